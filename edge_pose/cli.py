"""`edge-pose` entry point: parses arguments, then calls the modules that do the work."""
from __future__ import annotations

import argparse
import sys


def _add_train(sub):
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", required=True, help="YAML training config (see configs/)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from ('auto': the run folder's last.pt)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.set_defaults(func=_run_train)


def _run_train(args):
    from edge_pose.train.loop import main
    return main(args)


def _add_eval(sub):
    p = sub.add_parser("eval", help="COCO OKS keypoint AP through pycocotools")
    p.set_defaults(func=_run_eval)
    from edge_pose.train.evaluate import add_arguments
    add_arguments(p)


def _run_eval(args):
    from edge_pose.train.evaluate import main
    return main(args)


def _add_export(sub):
    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.set_defaults(func=_run_export)
    from edge_pose.export import add_arguments
    add_arguments(p)


def _run_export(args):
    from edge_pose.export import main
    return main(args)


def _add_annotate(sub):
    p = sub.add_parser("annotate", help="annotate videos / image folders: H.264 video, JSONL and COCO results",
                       description="Annotate recorded videos or image folders: for each input DIR/<stem>.mp4, "
                                   "DIR/<stem>.jsonl and DIR/<stem>.coco.json.")
    p.set_defaults(func=_run_annotate)
    from edge_pose.annotate import add_arguments
    add_arguments(p)


def _run_annotate(args):
    from edge_pose.annotate import main
    return main(args)


def _add_bench(sub):
    p = sub.add_parser("bench", help="latency (batch 1 and 8) and end-to-end annotate FPS per model and backend",
                       description="Per model and backend: inference latency at batch 1 and 8 (median, p90) and "
                                   "the end-to-end annotate FPS on the first frames of a video.")
    p.set_defaults(func=_run_bench)
    from edge_pose.bench import add_arguments
    add_arguments(p)


def _run_bench(args):
    from edge_pose.bench import main
    return main(args)



def _add_calibrate(sub):
    p = sub.add_parser("calibrate", help="INT8 calibration: QDQ INT8 ONNX behind an FP32-vs-INT8 AP gate",
                       description="Calibrate an FP32 ONNX on person crops (made as at inference) and write a QDQ "
                                   "INT8 ONNX, only if its OKS AP is within --max-ap-drop of FP32 (or --force).")
    p.set_defaults(func=_run_calibrate)
    from edge_pose.quant.calibrate import add_arguments
    add_arguments(p)


def _run_calibrate(args):
    from edge_pose.quant.calibrate import main
    return main(args)


def _add_build_engine(sub):
    p = sub.add_parser("build-engine", help="build a TensorRT engine (fp32 / fp16 / int8) with a JSON sidecar",
                       description="ONNX -> TensorRT engine X.engine plus X.engine.json (TensorRT version, GPU, "
                                   "precision, input shape, ONNX sha256). Run it on the machine that runs the engine.")
    p.set_defaults(func=_run_build_engine)
    from edge_pose.quant.trt_build import add_arguments
    add_arguments(p)


def _run_build_engine(args):
    from edge_pose.quant.trt_build import main
    return main(args)

def build_parser():
    parser = argparse.ArgumentParser(prog="edge-pose", description=__doc__)
    from edge_pose import __version__
    parser.add_argument("--version", action="version", version="edge-pose " + __version__)
    sub = parser.add_subparsers(dest="command")
    for add in (_add_train, _add_eval, _add_export, _add_annotate, _add_bench, _add_calibrate, _add_build_engine):
        add(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
