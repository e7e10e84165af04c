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


def build_parser():
    parser = argparse.ArgumentParser(prog="edge-pose", description=__doc__)
    from edge_pose import __version__
    parser.add_argument("--version", action="version", version="edge-pose " + __version__)
    sub = parser.add_subparsers(dest="command")
    for add in (_add_train, _add_eval, _add_export):
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
