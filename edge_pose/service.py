"""`edge-pose service install|uninstall|print`: the systemd unit that runs the headless pipeline at boot.

The unit is made from the template `edge_pose/data/edge-pose.service.in` (package data, so an installed
package has it; `scripts/edge-pose.service.in` links to it). It runs
`<edge-pose executable> run --config /etc/edge-pose/config.yaml --headless` as a dedicated system user,
Type=notify with a watchdog (see watchdog.py), with hardening that still lets the camera and GPU through.

`print` writes the unit to stdout. `install` (root) creates the user, writes a default config when there is
none, writes the unit, then `systemctl daemon-reload`, `enable` and `restart` (`--no-start`: enable only).
`uninstall` disables, stops and removes the unit; `--purge` also removes the config, state, cache and log
folders and the user. `--dry-run` prints the steps; `--root DIR` writes the files under DIR (an image being
built) and runs no systemctl, useradd or userdel.
"""
from __future__ import annotations

import glob
import os
import pkgutil
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

UNIT_NAME = "edge-pose.service"
UNIT_DIR = "/etc/systemd/system"
CONFIG_PATH = "/etc/edge-pose/config.yaml"
STATE_DIR = "/var/lib/edge-pose"
DATA_DIRS = (STATE_DIR, "/var/cache/edge-pose", "/var/log/edge-pose")  # StateDirectory, CacheDirectory, Logs
DEFAULT_USER = "edge-pose"
GPU_GROUPS = ("video", "render")  # cameras and (Jetson) GPU nodes belong to video; DRM render nodes to render
# device groups of /proc/devices (globs allowed): cameras, NVIDIA desktop / Thor GPUs, Jetson nvhost / nvgpu /
# host1x nodes, DRM render nodes; they also cover devices plugged in after the start
DEVICE_GROUPS = ("char-video4linux", "char-nvidia*", "char-nvhost*", "char-nvgpu*", "char-host1x*", "char-drm")
# systemd does not glob DeviceAllow= paths: the nodes present when the unit is generated are listed one by one
DEVICE_GLOBS = ("/dev/video*", "/dev/nvhost-*", "/dev/nvmap", "/dev/nvidia*", "/dev/nvgpu/*/*", "/dev/dri/renderD*")
HOME_PREFIXES = ("/home/", "/root/", "/run/user/")


class ServiceError(RuntimeError):
    """A step of install/uninstall cannot be done; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------------- the unit

def template_text():
    """The unit template shipped as package data."""
    return pkgutil.get_data("edge_pose", "data/edge-pose.service.in").decode("utf-8")


def default_config_text():
    """The default /etc/edge-pose/config.yaml shipped as package data."""
    return pkgutil.get_data("edge_pose", "data/service-config.yaml").decode("utf-8")


def find_executable():
    """The command that starts edge-pose: the console script installed next to this interpreter, else the
    one on PATH, else `python -m edge_pose.cli`. Absolute paths; symlinks kept (a venv's python is one)."""
    here = Path(sys.executable).parent / "edge-pose"
    if here.is_file() and os.access(str(here), os.X_OK):
        return [os.path.abspath(str(here))]
    found = shutil.which("edge-pose")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "edge_pose.cli"]


def systemd_quote(arg):
    """One ExecStart= word: `%` and `$` escaped, double-quoted when it holds spaces or quotes."""
    word = arg.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", word) or not word:
        word = '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"')
    return word


def _group_exists(name):
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _user_exists(name):
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _interpreter(script):
    """The interpreter a console script's #! line names, or None."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512).decode("utf-8", "replace")
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    words = first[2:].split()
    return words[0] if words else None


def needed_paths(exec_args):
    """Paths the service must be able to read: the executable, its interpreter, the edge_pose package."""
    paths = [exec_args[0]]
    interp = _interpreter(exec_args[0])
    if interp:
        paths.append(interp)
    paths.append(str(Path(__file__).resolve().parent))
    out = []
    for p in paths:
        for q in (os.path.abspath(p), os.path.realpath(p)):
            if q not in out:
                out.append(q)
    return out


def protect_home_for(paths):
    """ProtectHome= value: read-only when the program lives under a home folder (a venv in ~), else yes."""
    return "read-only" if any((p + "/").startswith(HOME_PREFIXES) for p in paths) else "yes"


def unreachable_by_others(paths):
    """The first folder on the way to one of `paths` that users other than its owner cannot enter, or None
    (the service user may then not reach the program: a venv under a 0700 home, say)."""
    for path in paths:
        for parent in reversed(Path(path).parents):
            try:
                mode = parent.stat().st_mode
            except OSError:
                break
            if not mode & stat.S_IXOTH:
                return str(parent)
    return None


def device_lines(policy=True, globs=DEVICE_GLOBS):
    """DevicePolicy=closed plus DeviceAllow= for the camera and GPU device groups and the nodes present now."""
    if not policy:
        return ["# DevicePolicy= not set (--no-device-policy): every device node its permissions allow"]
    lines = ["DevicePolicy=closed"]
    lines += ["DeviceAllow=%s rw" % g for g in DEVICE_GROUPS]
    nodes = set()
    for pattern in globs:
        for path in glob.glob(pattern):
            try:
                if stat.S_ISCHR(os.stat(path).st_mode):
                    nodes.add(path)
            except OSError:
                continue
    lines += ["DeviceAllow=%s rw" % systemd_quote(p) for p in sorted(nodes)]
    return lines


def render_unit(exec_args=None, user=DEFAULT_USER, config=CONFIG_PATH, watchdog_sec=30, restart_sec=5,
                timeout_start_sec=300, groups=None, writable=(), protect_home="auto", device_policy=True,
                template=None):
    """The unit file text. `groups` None: those of video/render that exist here; `writable`: extra
    ReadWritePaths= (an output folder outside /var/lib/edge-pose); `protect_home` "auto": see protect_home_for."""
    exec_args = list(exec_args or find_executable())
    if groups is None:
        groups = [g for g in GPU_GROUPS if _group_exists(g)]
    if protect_home == "auto":
        protect_home = protect_home_for(needed_paths(exec_args) + [os.path.abspath(config)])
    argv = exec_args + ["run", "--config", config, "--headless"]
    fields = {
        "EXEC_START": " ".join(systemd_quote(a) for a in argv),
        "USER": user,
        "SUPPLEMENTARY_GROUPS": ("SupplementaryGroups=" + " ".join(groups)) if groups
        else "# SupplementaryGroups= none: no video/render group on the machine that generated this unit",
        "RESTART_SEC": _seconds(restart_sec),
        "WATCHDOG_SEC": _seconds(watchdog_sec),
        "TIMEOUT_START_SEC": _seconds(timeout_start_sec),
        "READ_WRITE_PATHS": "\n".join("ReadWritePaths=-%s" % systemd_quote(os.path.abspath(w)) for w in writable)
        or "# ReadWritePaths= none besides the directories above (service install --writable DIR adds one)",
        "PROTECT_HOME": protect_home,
        "DEVICE_POLICY": "\n".join(device_lines(device_policy)),
    }
    text = template if template is not None else template_text()
    text = re.sub(r"@([A-Z_]+)@", lambda m: fields[m.group(1)] if m.group(1) in fields else m.group(0), text)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise ServiceError("unit template: unknown fields %s" % ", ".join(sorted(set(left))))
    return text


def _seconds(value):
    value = float(value)
    if value < 0:
        raise ServiceError("durations must be >= 0 seconds, got %g" % value)
    return ("%d" % value) if value == int(value) else ("%gs" % value)


# ---------------------------------------------------------------------------------------------------- steps

class Steps:
    """Prints each step (`+ what`) and does it, or only prints it (`dry_run`)."""

    def __init__(self, dry_run=False, out=None):
        self.dry_run = dry_run
        self.out = out or sys.stdout
        self.done = []

    def do(self, text, fn, *args):
        print(("would: " if self.dry_run else "+ ") + text, file=self.out, flush=True)
        self.done.append(text)
        if not self.dry_run:
            return fn(*args)
        return None

    def run(self, argv, check=True):
        return self.do(" ".join(shlex.quote(a) for a in argv), _run, argv, check)

    def note(self, text):
        print("note: " + text, file=self.out, flush=True)


def _run(argv, check=True):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as e:
        raise ServiceError("cannot run %s: %s" % (argv[0], e.strerror)) from None
    if check and proc.returncode != 0:
        raise ServiceError("%s failed (exit %d): %s" % (" ".join(argv), proc.returncode,
                                                        (proc.stderr or proc.stdout).strip()))
    return proc


def _write(path, text, mode, user=None):
    """Write atomically; `user`: group-owned by that user's primary group (a config readable by the service)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(str(tmp), mode)
    if user is not None:
        import pwd

        os.chown(str(tmp), 0, pwd.getpwnam(user).pw_gid)
    os.replace(str(tmp), str(path))


def _remove(path):
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(str(path))
    elif path.exists() or path.is_symlink():
        path.unlink()


def _under(root, path):
    return Path(root) / Path(path).relative_to("/") if root else Path(path)


def systemd_running():
    """sd_booted(): systemd is PID 1 here."""
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def check_host(action, dry_run, root):
    """Installing on the running system needs root and a running systemd; --root needs neither."""
    if root:
        return []
    problems = []
    if os.geteuid() != 0:
        problems.append("%s needs root: sudo \"$(command -v edge-pose)\" service %s ... (--dry-run shows the "
                        "steps, --root DIR writes into an image)" % (action, action))
    if not systemd_running():
        problems.append("systemd is not running on this machine (no /run/systemd/system or no systemctl): "
                        "use --root DIR to prepare an image, or `edge-pose service print` for the unit")
    if problems and not dry_run:
        raise ServiceError("; ".join(problems))
    return problems


def install(args, out=None):
    """Create the user, the config (when absent) and the unit; reload systemd and enable (and start) it."""
    steps = Steps(args.dry_run, out)
    root = args.root
    for problem in check_host("install", args.dry_run, root):
        steps.note(problem)
    exec_args = _exec_args(args)
    unit = _render_from_args(args, exec_args)
    user = args.user

    if root:
        steps.note("--root: the user %s is not created here; on the target: useradd --system --user-group "
                   "--home-dir %s --no-create-home --shell /usr/sbin/nologin %s" % (user, STATE_DIR, user))
    elif not _user_exists(user):
        steps.run(["useradd", "--system", "--user-group", "--home-dir", STATE_DIR, "--no-create-home",
                   "--shell", "/usr/sbin/nologin", "--comment", "edge-pose service", user])
    blocked = unreachable_by_others(needed_paths(exec_args))
    if blocked:
        steps.note("%s is closed to other users: the service user %s may not reach the program; install "
                   "edge-pose system-wide or under /opt, or open that folder to it" % (blocked, user))

    config = _under(root, args.config)
    if config.exists():
        steps.note("keeping the existing config %s" % config)
    else:
        if args.config_template:
            try:
                text = Path(args.config_template).read_text(encoding="utf-8")
            except OSError as e:
                raise ServiceError("--config-template %s: %s" % (args.config_template, e.strerror)) from None
        else:
            text = default_config_text()
        owner = None if root else user  # root:<user's group> 0640 (it may hold passwords); in an image 0644
        steps.do("write %s (from %s)" % (config, args.config_template or "the default config"),
                 _write, config, text, 0o640 if owner else 0o644, owner)

    unit_path = _under(root, os.path.join(UNIT_DIR, UNIT_NAME))
    steps.do("write %s" % unit_path, _write, unit_path, unit, 0o644)
    if root:
        steps.note("--root: no systemctl here; on the target: systemctl enable --now %s" % UNIT_NAME)
    else:
        steps.run(["systemctl", "daemon-reload"])
        steps.run(["systemctl", "enable", UNIT_NAME])
        if not args.no_start:  # restart, not enable --now: a re-install must replace a running old version
            steps.run(["systemctl", "restart", UNIT_NAME])
        if not args.dry_run:
            print("%s: %s. Logs: journalctl -u edge-pose -f   Status: systemctl status edge-pose"
                  % (UNIT_NAME, "enabled (starts at boot)" if args.no_start else "enabled and started"),
                  file=out or sys.stdout)
    return steps


def uninstall(args, out=None):
    """Disable, stop and remove the unit; --purge: also the config, data folders and user."""
    steps = Steps(args.dry_run, out)
    root = args.root
    for problem in check_host("uninstall", args.dry_run, root):
        steps.note(problem)
    unit_path = _under(root, os.path.join(UNIT_DIR, UNIT_NAME))
    if not root:
        steps.run(["systemctl", "disable", "--now", UNIT_NAME], check=False)
    if unit_path.exists() or args.dry_run:
        steps.do("remove %s" % unit_path, _remove, unit_path)
    else:
        steps.note("%s is not installed" % unit_path)
    if not root:
        steps.run(["systemctl", "daemon-reload"])
        steps.run(["systemctl", "reset-failed", UNIT_NAME], check=False)
    if not args.purge:
        steps.note("kept %s, %s and the user %s (--purge removes them)"
                   % (os.path.dirname(args.config), ", ".join(DATA_DIRS), args.user))
        return steps
    dropins = str(unit_path) + ".d"
    # the config's folder only when it is edge-pose's own (/etc/edge-pose), else the file alone
    config = os.path.dirname(args.config) if os.path.basename(os.path.dirname(args.config)) == "edge-pose" \
        else args.config
    for path in [dropins, _under(root, config)] + [_under(root, d) for d in DATA_DIRS]:
        if Path(path).exists() or args.dry_run:
            steps.do("remove %s" % path, _remove, path)
    if root:
        steps.note("--root: the user %s is not removed here (userdel %s on the target)" % (args.user, args.user))
    elif _user_exists(args.user) or args.dry_run:
        steps.run(["userdel", args.user])
    return steps


# ---------------------------------------------------------------------------------------------------- CLI

def _exec_args(args):
    if args.exec_path:
        path = os.path.abspath(args.exec_path)
        if not os.access(path, os.X_OK):
            raise ServiceError("--exec %s: not an executable file" % path)
        return [path]
    return find_executable()


def _render_from_args(args, exec_args):
    return render_unit(exec_args, user=args.user, config=args.config, watchdog_sec=args.watchdog_sec,
                       restart_sec=args.restart_sec, timeout_start_sec=args.timeout_start_sec,
                       groups=None if args.groups is None else [g for g in args.groups.split(",") if g],
                       writable=args.writable, protect_home=args.protect_home,
                       device_policy=not args.no_device_policy)


def _unit_options():
    import argparse

    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("unit")
    g.add_argument("--user", default=DEFAULT_USER, help="system user the service runs as (default %(default)s)")
    g.add_argument("--exec", dest="exec_path", default=None, metavar="PATH",
                   help="edge-pose executable for ExecStart (default: the one installed with this Python)")
    g.add_argument("--config", default=CONFIG_PATH, help="config the service reads (default %(default)s)")
    g.add_argument("--watchdog-sec", type=float, default=30.0,
                   help="WatchdogSec=: restart when no frame completes for this long (0: off; default 30)")
    g.add_argument("--restart-sec", type=float, default=5.0, help="RestartSec= after a failure (default 5)")
    g.add_argument("--timeout-start-sec", type=float, default=300.0,
                   help="TimeoutStartSec=: time to load the model and send READY=1 (default 300)")
    g.add_argument("--groups", default=None, metavar="G1,G2",
                   help="SupplementaryGroups= (default: video and render where they exist)")
    g.add_argument("--writable", action="append", default=[], metavar="DIR",
                   help="extra ReadWritePaths= for outputs outside /var/lib/edge-pose (repeatable)")
    g.add_argument("--protect-home", default="auto", choices=("auto", "yes", "read-only", "tmpfs", "no"),
                   help="ProtectHome= (auto: read-only when edge-pose is installed under a home folder, else yes)")
    g.add_argument("--no-device-policy", action="store_true",
                   help="leave out DevicePolicy=closed/DeviceAllow= (if a GPU's device nodes are not covered)")
    return p


def add_arguments(p):
    unit = _unit_options()
    sub = p.add_subparsers(dest="action", metavar="{install,uninstall,print}")
    sub.required = True
    pp = sub.add_parser("print", parents=[unit], help="write the unit file to stdout")
    pp.set_defaults(dry_run=False, root=None)
    pi = sub.add_parser("install", parents=[unit], help="install, enable and start the service (root)")
    pu = sub.add_parser("uninstall", help="stop, disable and remove the service (root)")
    for q in (pi, pu):
        q.add_argument("--dry-run", action="store_true", help="print the steps without doing them")
        q.add_argument("--root", default=None, metavar="DIR",
                       help="write the files under DIR (an image being built); no systemctl/useradd/userdel")
    pi.add_argument("--no-start", action="store_true", help="enable only (starts at the next boot)")
    pi.add_argument("--config-template", default=None, metavar="PATH",
                    help="config to install when %s does not exist (default: a minimal one)" % CONFIG_PATH)
    pu.add_argument("--purge", action="store_true",
                    help="also remove the config, /var/lib, /var/cache and /var/log/edge-pose (results!) and the user")
    pu.add_argument("--user", default=DEFAULT_USER, help="the service's user (removed by --purge)")
    pu.add_argument("--config", default=CONFIG_PATH, help="its config (its folder is removed by --purge)")


def main(args):
    try:
        if args.action == "print":
            exec_args = _exec_args(args)
            sys.stdout.write(_render_from_args(args, exec_args))
            blocked = unreachable_by_others(needed_paths(exec_args))
            if blocked:
                print("warning: %s is closed to other users: the service user %s may not reach the program"
                      % (blocked, args.user), file=sys.stderr)
            return 0
        if args.action == "install":
            install(args)
        else:
            uninstall(args)
    except ServiceError as e:
        print("edge-pose service %s: error: %s" % (args.action, e), file=sys.stderr)
        return 1
    return 0
