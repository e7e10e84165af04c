"""systemd notifications (sd_notify) and the pipeline heartbeat that feeds the service's watchdog.

sd_notify is one datagram of `KEY=VALUE` lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a leading
'@' names the abstract namespace). It is written here with the standard library: the protocol is a few
lines, while `systemd-python` is a C extension that needs the libsystemd headers and a compiler to install
from PyPI (awkward on a Jetson, impossible in a slim image) and `sdnotify` is an unmaintained package that
would add a dependency for those same few lines. Outside systemd (no $NOTIFY_SOCKET) everything is a no-op.

`Heartbeat`: the pipeline calls `beat()` whenever a frame completes; a thread sends WATCHDOG=1 every
WatchdogSec/2 only while the last beat is recent, so a stalled pipeline (a hung camera read, a wedged
inference) stops the pings and systemd restarts the service. Also READY=1 (`ready()`), STATUS= lines (fps)
and STOPPING=1 (`stop()`).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)

_warned = set()


def _address(env):
    addr = env.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr.startswith("@"):
        return "\0" + addr[1:]
    if addr.startswith("/"):
        return addr
    if addr not in _warned:  # vsock: and others (systemd in VMs) are not supported
        _warned.add(addr)
        log.warning("NOTIFY_SOCKET=%s: only path and @abstract sockets are supported; not notifying", addr)
    return None


def notify(*lines, env=None):
    """Send `lines` (e.g. "READY=1", "STATUS=...") to systemd as one message. False when not under systemd
    or when sending failed (logged once); never raises."""
    env = os.environ if env is None else env
    addr = _address(env)
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode("utf-8"), addr)
    except OSError as e:
        if addr not in _warned:
            _warned.add(addr)
            log.warning("sd_notify to %s failed: %s", env.get("NOTIFY_SOCKET"), e)
        return False
    return True


def watchdog_seconds(env=None):
    """WatchdogSec= of this service in seconds, or None when systemd expects no pings from this process
    ($WATCHDOG_USEC unset or 0, or $WATCHDOG_PID names another process)."""
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = int(env.get("WATCHDOG_PID") or os.getpid())
    except ValueError:
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec / 1e6


class Heartbeat:
    """Pings systemd's watchdog while frames keep completing.

    `beat()` after each frame (from one thread); `keepalive()` where the process is alive but has no frame to
    show (a reconnect loop waiting for an unplugged camera), so that it is not restarted for that. Before
    `ready()` (model loading) the watchdog is pinged unconditionally; from `ready()` on, only while the last
    beat is younger than `stall_timeout` (default: WatchdogSec). systemd then restarts a stalled service
    within stall_timeout + WatchdogSec. STATUS= reports the fps every `status_every` seconds (`status`: a
    callable returning the text instead) and "stalled: ..." when the beats stop.
    """

    def __init__(self, stall_timeout=None, status_every=10.0, status=None, env=None, clock=time.monotonic):
        self.env = dict(os.environ if env is None else env)
        self.enabled = _address(self.env) is not None
        self.watchdog = watchdog_seconds(self.env) if self.enabled else None
        self.stall_timeout = float(stall_timeout if stall_timeout is not None else (self.watchdog or 30.0))
        self.status_every = float(status_every)
        self.period = min(self.watchdog / 2.0, self.status_every) if self.watchdog else self.status_every
        self.status_fn = status
        self.clock = clock
        self.frames = 0
        self.stalled = False
        self._last = clock()
        self._ready = False
        self._stop = threading.Event()
        self._thread = None
        self._fps_mark = (self._last, 0)

    # -------------------------------------------------------------------------------------------- pipeline side

    def beat(self):
        """A frame completed."""
        self._last = self.clock()
        self.frames += 1

    def keepalive(self):
        """Alive without a frame (waiting for a source): keeps the watchdog fed, counts no frame."""
        self._last = self.clock()

    def start(self):
        """Start the pinging thread (pings unconditionally until ready()). No-op outside systemd."""
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
            self._thread.start()
        return self

    def ready(self, status="running"):
        """Tell systemd the service is up (READY=1); from now on pings depend on beats."""
        self._last = self.clock()
        self._ready = True
        self.start()
        return notify("READY=1", "STATUS=" + status, env=self.env)

    def set_status(self, text):
        return notify("STATUS=" + text, env=self.env)

    def extend_timeout(self, seconds):
        """Ask systemd for `seconds` more before start-up (or stop) times out (a long TensorRT build)."""
        return notify("EXTEND_TIMEOUT_USEC=%d" % int(seconds * 1e6), env=self.env)

    def stop(self):
        """STOPPING=1 and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.enabled:
            notify("STOPPING=1", env=self.env)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -------------------------------------------------------------------------------------------- thread side

    def fps(self, now=None):
        """Frames per second since the previous call."""
        now = self.clock() if now is None else now
        t0, n0 = self._fps_mark
        self._fps_mark = (now, self.frames)
        return (self.frames - n0) / (now - t0) if now > t0 else 0.0

    def _status_text(self, now):
        if self.status_fn is not None:
            return str(self.status_fn())
        return "%.1f fps, %d frames" % (self.fps(now), self.frames)

    def _run(self):
        next_status = self.clock() + self.status_every
        while not self._stop.wait(self.period):
            now = self.clock()
            age = now - self._last
            lines = []
            if not self._ready or age < self.stall_timeout:
                if self.watchdog:
                    lines.append("WATCHDOG=1")
                if self.stalled:
                    self.stalled = False
                    log.info("pipeline running again")
                    next_status = now
            elif not self.stalled:
                self.stalled = True
                log.warning("pipeline stalled: no frame for %.1f s%s", age,
                            "; systemd will restart the service" if self.watchdog else "")
                lines.append("STATUS=stalled: no frame for %.0f s" % age)
            if self._ready and not self.stalled and now >= next_status:
                lines.append("STATUS=" + self._status_text(now))
                next_status = now + self.status_every
            if lines:
                notify(*lines, env=self.env)
