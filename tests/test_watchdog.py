"""sd_notify over a real AF_UNIX datagram socket standing in for systemd's, and the heartbeat's watchdog."""
import os
import socket
import tempfile
import threading
import time
import uuid

import pytest

from edge_pose.watchdog import Heartbeat, notify, watchdog_seconds

WATCHDOG_USEC = 200000  # pings every 0.1 s


@pytest.fixture
def notify_socket():
    """A bound datagram socket (short path: AF_UNIX paths are limited to 108 bytes) and its env."""
    folder = tempfile.mkdtemp(prefix="sdn")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    yield sock, {"NOTIFY_SOCKET": path}
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


class Inbox:
    """Collects the lines systemd would receive, in order."""

    def __init__(self, sock):
        self.sock, self.lines = sock, []

    def pump(self, seconds):
        end = time.monotonic() + seconds
        new = []
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            new.extend(data.decode().split("\n"))
        self.lines.extend(new)
        return new

    def wait_for(self, predicate, timeout=15.0):
        """Receive until predicate(line) holds; return the lines received up to and including it."""
        end = time.monotonic() + timeout
        got = []
        while time.monotonic() < end:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            for line in data.decode().split("\n"):
                got.append(line)
                if predicate(line):
                    self.lines.extend(got)
                    return got
        self.lines.extend(got)
        raise AssertionError("not received within %.0f s; got %r" % (timeout, got[-10:]))


def test_notify_sends_lines_and_is_a_noop_outside_systemd(notify_socket):
    sock, env = notify_socket
    assert notify("READY=1", "STATUS=hello", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=hello"
    assert not notify("READY=1", env={})
    hb = Heartbeat(env={})
    assert not hb.enabled and hb.start()._thread is None and not hb.ready()
    hb.stop()


def test_notify_abstract_namespace():
    name = "edge-pose-test-%s" % uuid.uuid4().hex
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert notify("READY=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_watchdog_seconds_only_for_this_process():
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_seconds({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}) == 0.2
    assert watchdog_seconds({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_seconds({}) is None and watchdog_seconds({"WATCHDOG_USEC": "0"}) is None


def test_heartbeat_pings_while_frames_come_and_stops_when_the_pipeline_stalls(notify_socket):
    sock, env = notify_socket
    env = dict(env, WATCHDOG_USEC=str(WATCHDOG_USEC), WATCHDOG_PID=str(os.getpid()))
    inbox = Inbox(sock)
    hb = Heartbeat(stall_timeout=0.5, status_every=0.3, env=env)
    assert hb.watchdog == 0.2 and hb.period == pytest.approx(0.1)
    beating = threading.Event()
    beating.set()
    done = threading.Event()

    def pipeline():  # a frame every 20 ms while `beating`
        while not done.is_set():
            if beating.is_set():
                hb.beat()
            time.sleep(0.02)

    worker = threading.Thread(target=pipeline, daemon=True)
    worker.start()
    try:
        hb.ready()
        first = inbox.wait_for(lambda line: line == "READY=1")
        assert first == ["READY=1"]
        # frames come: periodic WATCHDOG=1 and an fps STATUS
        for _ in range(3):
            inbox.wait_for(lambda line: line == "WATCHDOG=1")
        inbox.wait_for(lambda line: line.startswith("STATUS=") and "fps" in line)
        assert hb.frames > 0

        # the pipeline stalls: the heartbeat says so, then no WATCHDOG=1 at all (systemd would restart it)
        beating.clear()
        inbox.wait_for(lambda line: line.startswith("STATUS=stalled"))
        assert hb.stalled
        after = inbox.pump(10 * hb.period)  # 1 s: 5 watchdog intervals of 0.2 s
        assert "WATCHDOG=1" not in after

        # frames again: the pings resume
        beating.set()
        inbox.wait_for(lambda line: line == "WATCHDOG=1")
    finally:
        done.set()
        worker.join()
        hb.stop()
    inbox.wait_for(lambda line: line == "STOPPING=1")


def test_heartbeat_does_not_ping_for_another_process(notify_socket):
    sock, env = notify_socket
    env = dict(env, WATCHDOG_USEC=str(WATCHDOG_USEC), WATCHDOG_PID=str(os.getpid() + 1))
    inbox = Inbox(sock)
    with Heartbeat(status_every=0.2, env=env) as hb:
        assert hb.watchdog is None
        hb.ready()
        inbox.wait_for(lambda line: line == "READY=1")
        for _ in range(3):  # STATUS lines keep coming; pings never
            hb.beat()
            inbox.wait_for(lambda line: line.startswith("STATUS=") and "fps" in line)
    assert "WATCHDOG=1" not in inbox.lines


def test_heartbeat_pings_before_ready_without_frames(notify_socket):
    """Model loading sends no frames: before READY=1 the watchdog is fed regardless."""
    sock, env = notify_socket
    env = dict(env, WATCHDOG_USEC=str(WATCHDOG_USEC))
    inbox = Inbox(sock)
    with Heartbeat(stall_timeout=0.05, env=env):
        for _ in range(3):
            inbox.wait_for(lambda line: line == "WATCHDOG=1")
    assert "READY=1" not in inbox.lines and not any(x.startswith("STATUS=stalled") for x in inbox.lines)
    inbox.wait_for(lambda line: line == "STOPPING=1")


def test_the_real_pipeline_stalled_on_purpose_stops_petting_the_watchdog(notify_socket, monkeypatch):
    """`edge-pose run`'s heartbeat wiring on the real pipeline: pings while frames complete, none once the
    pose stage hangs (systemd would then kill and restart the service)."""
    from pathlib import Path

    from edge_pose.estimator import PoseEstimator
    from edge_pose.persons import make_person_source
    from edge_pose.pipeline import Pipeline
    from edge_pose.run import _heartbeat
    from edge_pose.sources import open_source

    sock, env = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    clip = Path(__file__).resolve().parents[1] / "samples" / "two_people.mp4"
    gate = threading.Event()

    class Stalling:
        """The shipped model, hanging from its 8th call on (a wedged accelerator, a deadlock...)."""

        def __init__(self):
            self.est, self.calls = PoseEstimator("mobilenetv3", threads=1), 0

        @property
        def timings(self):
            return self.est.timings

        def __call__(self, frame, boxes):
            self.calls += 1
            if self.calls >= 8:
                gate.wait(30)
            return self.est(frame, boxes)

    inbox = Inbox(sock)
    src = open_source(clip, loop=True)
    model = Stalling()
    pipe = Pipeline(src, model, make_person_source("full-frame"), realtime=True)
    beat = _heartbeat(pipe)
    runner = threading.Thread(target=pipe.run, daemon=True)
    runner.start()
    try:
        inbox.wait_for(lambda line: line == "READY=1")
        inbox.wait_for(lambda line: line == "WATCHDOG=1")
        deadline = time.monotonic() + 30
        while model.calls < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert model.calls >= 8 and pipe.finished >= 5
        inbox.pump(0.5)  # the stall is noticed after WatchdogSec (0.2 s)
        assert "WATCHDOG=1" not in inbox.pump(1.0)
    finally:
        gate.set()
        pipe.stop()
        runner.join(10)
        beat.stop()
        src.close()
        model.est.close()
    assert not runner.is_alive()
