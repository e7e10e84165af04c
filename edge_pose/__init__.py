"""edge-pose: real-time human pose estimation for Jetson, desktop GPUs and CPUs."""
__version__ = "0.1.0"

__all__ = ["PoseEstimator", "__version__"]


def __getattr__(name):
    # lazy: `import edge_pose` stays light (no onnxruntime / torch) until PoseEstimator is asked for
    if name == "PoseEstimator":
        from edge_pose.estimator import PoseEstimator

        return PoseEstimator
    raise AttributeError("module 'edge_pose' has no attribute %r" % (name,))
