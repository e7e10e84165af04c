"""HTTP side of the headless service: a LiveHub the pipeline publishes frames to, and a PoseServer over it.

    from edge_pose.serve import LiveHub, PoseServer, ServeParams
    hub = LiveHub()
    server = PoseServer(hub, ServeParams(host="0.0.0.0", port=8080), pose_fn=None).start()
    hub.set_stats_fn(pipeline.stats)
    ... the pipeline's output thread: hub.publish(record, annotated_bgr) per frame ...
    server.stop()
"""
from __future__ import annotations

from edge_pose.serve.hub import LiveHub
from edge_pose.serve.server import PoseServer, ServeParams, image_pose_fn

__all__ = ["LiveHub", "PoseServer", "ServeParams", "image_pose_fn"]
