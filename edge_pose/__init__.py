"""edge-pose: real-time human pose estimation for Jetson, desktop GPUs and CPUs."""
__version__ = "0.1.0"
