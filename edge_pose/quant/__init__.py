"""INT8 calibration (QDQ ONNX through ONNX Runtime) and TensorRT engine building.

- `calibset`: the calibration set, person crops made by `edge_pose.preprocess` exactly as at inference, from
  COCO jsons (GT boxes), image folders or videos (whole-frame boxes); stratified; recorded in a list file.
- `qdq`: static quantization to a QDQ ONNX (per-channel symmetric int8 weights, float bias) with the
  minmax / percentile / entropy calibrators, for TensorRT (symmetric int8 activations) or ONNX Runtime CPU.
- `calibrate`: `edge-pose calibrate`, the calibration + accuracy gate (FP32 vs INT8 OKS AP).
- `trt_build`: `edge-pose build-engine`, TensorRT engines (fp32 / fp16 / int8) with a JSON sidecar.
"""
