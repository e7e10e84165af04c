"""`edge-pose config print [--config F] [--set k=v]`: the effective runtime config (defaults merged) as YAML,
after validation; an invalid config prints one line naming the key and exits 2."""
from __future__ import annotations

import sys


def add_arguments(p):
    p.add_argument("action", choices=("print", "check"), help="print: the effective config; check: validate only")
    p.add_argument("--config", default=None, metavar="F", help="YAML config (default: built-in defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a value (repeatable)")


def main(args):
    from edge_pose.config import ConfigError
    from edge_pose.run_config import load_run_config, to_yaml

    try:
        cfg = load_run_config(args.config, args.set)
    except ConfigError as exc:
        print("edge-pose config: error: %s" % " ".join(str(exc).split()), file=sys.stderr)
        return 2
    if args.action == "print":
        sys.stdout.write(to_yaml(cfg))
    else:
        print("%s: ok" % (args.config or "defaults"))
    return 0
