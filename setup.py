import os
import subprocess
import sys

from setuptools import find_packages, setup

ISOLATION_VARS = ("PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONHOME", "PYTHONSAFEPATH")


def opencv_requirement():
    """Never shadow an OpenCV that is already importable (JetPack's, built with GStreamer).

    pip builds in an isolated environment that hides the target's site-packages, so the check runs the
    target interpreter without the isolation variables. EDGE_POSE_SKIP_OPENCV=1 skips the requirement.
    The contrib build: OpenCV 5 moved the HOG people detector (detectors.HogDetector) out of the main one.
    """
    if os.environ.get("EDGE_POSE_SKIP_OPENCV"):
        return []
    env = {k: v for k, v in os.environ.items() if k not in ISOLATION_VARS}
    try:
        subprocess.run([sys.executable, "-c", "import cv2"], env=env, check=True, capture_output=True, timeout=120)
        return []
    except (OSError, subprocess.SubprocessError):
        return ["opencv-contrib-python-headless>=4.5"]


setup(
    name="edge-pose",
    version="0.1.0",
    description="Real-time human pose estimation for Jetson, desktop GPUs and CPUs",
    long_description=open("README.md").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["edge_pose", "edge_pose.*"]),
    # the systemd unit template and the service's default config (scripts/edge-pose.service.in links here)
    # the live page's static files
    package_data={"edge_pose": ["data/*.in", "data/*.yaml"], "edge_pose.serve": ["static/*"]},
    python_requires=">=3.8",
    install_requires=[
        "numpy>=1.20",
        "scipy>=1.5",  # Hungarian assignment (track.Tracker)
        "onnxruntime>=1.14",
        "pycocotools>=2.0.6",
        "PyYAML>=5.4",
        "tqdm>=4.60",
        "av>=10",  # H.264 video output (annotate); falls back to OpenCV mp4v without it
        # /metrics of the headless service (edge_pose.serve): pure Python, no dependencies, ~100 KB, so not an
        # extra that a Jetson install would miss; imported lazily (without it /metrics answers 503)
        "prometheus-client>=0.12",
    ] + opencv_requirement(),
    extras_require={
        # torch 2.13.0 is the CPU build on the development machines; any torch >= 2.1 works for training
        "train": ["torch>=2.1,<2.14", "onnx>=1.14"],
        "trt": ["cuda-python>=12,<13"],  # CUDA 12 drivers (JetPack 6); JetPack 5: pycuda
        "mqtt": ["paho-mqtt>=2"],  # MqttSink (edge_pose/push.py)
        # filterpy: the reference the vectorised Kalman filter is tested against
        "dev": ["torch>=2.1,<2.14", "onnx>=1.14", "pytest>=7", "ruff>=0.5", "vermin>=1.5", "paho-mqtt>=2",
                "filterpy>=1.4"],
    },
    entry_points={"console_scripts": ["edge-pose=edge_pose.cli:main"]},
    include_package_data=True,
)
