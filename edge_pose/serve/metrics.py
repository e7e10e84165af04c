"""Prometheus exposition of a live pipeline: a custom prometheus_client Collector over `LiveHub.stats()`.

Read at scrape time (nothing is counted twice or kept in the pipeline's hot path):

    edge_pose_frames_total, edge_pose_dropped_frames_total, edge_pose_reconnects_total   counters
    edge_pose_fps, edge_pose_persons (in the newest frame), edge_pose_frame_age_seconds
    edge_pose_stage_latency_ms{stage, quantile="0.5"|"0.95"}, edge_pose_stage_latency_last_ms{stage}
    edge_pose_queue_depth{queue}, edge_pose_running, edge_pose_stream_clients{kind}
    edge_pose_info{source, model} (always 1)
    edge_pose_temperature_celsius{zone, type}                    where /sys/class/thermal has zones
    edge_pose_power_watts / _voltage_volts / _current_amperes{device, rail}   where a Jetson INA3221 is found
    process_* (resident memory, CPU seconds, open fds) from prometheus_client's ProcessCollector

prometheus_client is imported here only, when the server is built.
"""
from __future__ import annotations

import logging

from edge_pose.serve import sensors

log = logging.getLogger(__name__)

QUANTILES = (("p50", "0.5"), ("p95", "0.95"))


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class HubCollector:
    """Collects a LiveHub's pipeline stats and the board's sensors at each scrape (sysfs under `root`)."""

    def __init__(self, hub, root="/"):
        self.hub = hub
        self.root = root

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.hub.stats()
        for key, name, doc in (("frames", "edge_pose_frames", "Frames processed"),
                               ("dropped", "edge_pose_dropped_frames", "Frames dropped by the pipeline"),
                               ("reconnects", "edge_pose_reconnects", "Source reconnections")):
            value = _num(stats.get(key))
            if value is not None:
                yield CounterMetricFamily(name, doc, value=value)
        fps = _num(stats.get("fps"))
        if fps is not None:
            yield GaugeMetricFamily("edge_pose_fps", "Processed frames per second", value=fps)
        if "running" in stats:
            yield GaugeMetricFamily("edge_pose_running", "1 while the pipeline runs",
                                    value=1.0 if stats["running"] else 0.0)

        latency = GaugeMetricFamily("edge_pose_stage_latency_ms", "Per-stage latency quantiles (ms)",
                                    labels=["stage", "quantile"])
        last = GaugeMetricFamily("edge_pose_stage_latency_last_ms", "Per-stage latency of the last frame (ms)",
                                 labels=["stage"])
        for stage, values in sorted((stats.get("latency_ms") or {}).items()):
            values = values or {}
            for key, quantile in QUANTILES:
                v = _num(values.get(key))
                if v is not None:
                    latency.add_metric([str(stage), quantile], v)
            v = _num(values.get("last"))
            if v is not None:
                last.add_metric([str(stage)], v)
        yield latency
        yield last

        queues = GaugeMetricFamily("edge_pose_queue_depth", "Items waiting in each stage queue", labels=["queue"])
        for queue, depth in sorted((stats.get("queues") or {}).items()):
            v = _num(depth)
            if v is not None:
                queues.add_metric([str(queue)], v)
        yield queues

        info = GaugeMetricFamily("edge_pose_info", "Source and model of the pipeline", labels=["source", "model"])
        info.add_metric([str(stats.get("source", "")), str(stats.get("model", ""))], 1.0)
        yield info

        _, record, _ = self.hub.latest(jpeg=False)
        if record is not None:
            yield GaugeMetricFamily("edge_pose_persons", "People in the newest frame",
                                    value=float(len(record.get("persons") or ())))
        age = self.hub.age()
        if age is not None:
            yield GaugeMetricFamily("edge_pose_frame_age_seconds", "Seconds since the newest frame", value=age)
        clients = GaugeMetricFamily("edge_pose_stream_clients", "Open streaming HTTP clients", labels=["kind"])
        for kind, n in sorted(self.hub.clients.items()):
            clients.add_metric([kind], float(n))
        yield clients

        for family in self._sensors(GaugeMetricFamily):
            yield family

    def _sensors(self, Gauge):  # noqa: N803 (a class passed in)
        try:
            temps = sensors.temperatures(self.root)
            rails = sensors.power_rails(self.root)
        except Exception:  # sysfs oddities must not break a scrape
            log.debug("sensor read failed", exc_info=True)
            return []
        out = []
        if temps:
            g = Gauge("edge_pose_temperature_celsius", "Thermal zone temperature", labels=["zone", "type"])
            for t in temps:
                g.add_metric([t.zone, t.type], t.celsius)
            out.append(g)
        if rails:
            fams = {field: Gauge("edge_pose_%s" % name, doc, labels=["device", "rail"])
                    for field, name, doc in (("watts", "power_watts", "Power rail draw (INA3221)"),
                                             ("volts", "voltage_volts", "Power rail voltage (INA3221)"),
                                             ("amperes", "current_amperes", "Power rail current (INA3221)"))}
            for r in rails:
                for field, fam in fams.items():
                    v = getattr(r, field)
                    if v is not None:
                        fam.add_metric([r.device, r.rail], v)
            out.extend(fams.values())
        return out


def make_registry(hub, root="/"):
    """A fresh CollectorRegistry holding a HubCollector and a ProcessCollector."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub, root))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry):
    """(body bytes, content type) of a scrape."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry), CONTENT_TYPE_LATEST
