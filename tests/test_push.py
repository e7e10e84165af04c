"""MqttSink against a real broker (mosquitto on a random local port; skipped where it is not installed)."""
import json
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from edge_pose.rotating import record_json

mqtt = pytest.importorskip("paho.mqtt.client")
from edge_pose.push import MqttSink  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on 127.0.0.1:port, started and stopped at will."""

    def __init__(self, folder, port):
        self.port = port
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert self.proc.poll() is None, "mosquitto exited with %s" % self.proc.returncode
                time.sleep(0.05)
        raise AssertionError("mosquitto did not listen on %d" % self.port)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def broker(tmp_path):
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto (the MQTT broker) is not installed: apt-get install mosquitto")
    b = Broker(tmp_path, free_port())
    yield b
    b.stop()


class Subscriber:
    """A plain paho client collecting (topic, payload) of the topics it subscribed to."""

    def __init__(self, port, topics):
        self.messages = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe([(t, 1) for t in topics])
        c.on_subscribe = lambda cl, u, mid, rcs, p: subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        assert subscribed.wait(20), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode()))

    def wait(self, predicate, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate(list(self.messages)):
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError("not received: %r" % self.messages[-5:])

    def frames(self, topic):
        with self.lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def frame_record(i, people=True):
    rng = np.random.default_rng(i)
    persons = []
    if people:
        kp = np.round(np.concatenate([rng.uniform(0, 640, (17, 2)), rng.uniform(0, 1, (17, 1))], axis=1), 2)
        persons.append({"track_id": 1, "box": [10.0, 20.0, 100.0, 200.0], "score": float(kp[:, 2].mean()),
                        "keypoints": kp.astype(np.float32), "smoothed": None})
    return {"frame": i, "time": i / 30.0, "captured": 1.7e9 + i / 30.0, "persons": persons,
            "timings": {"infer": 4.0}, "stats": {"fps": 30.0, "dropped": 0}}


def wait_until(cond, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_records_arrive_with_online_offline_status(broker):
    broker.start()
    sub = Subscriber(broker.port, ["t/frames", "t/status"])
    try:
        sink = MqttSink("127.0.0.1", broker.port, topic="t/frames", status_topic="t/status")
        assert sink.wait_connected(20)
        records = [frame_record(i) for i in range(20)]
        for r in records:
            assert sink.write(r, image=np.zeros((2, 2, 3), np.uint8))
        sink.close()
        sub.wait(lambda m: len([x for x in m if x[0] == "t/frames"]) == 20
                 and ("t/status", "offline") in m)
        assert sub.frames("t/frames") == [json.loads(record_json(r)) for r in records]
        status = [p for t, p in sub.messages if t == "t/status"]
        assert status[0] == "online" and status[-1] == "offline"
        assert sink.stats() == {"published": 20, "dropped": 0, "skipped": 0, "connected": False, "reconnects": 0}
    finally:
        sub.close()


def test_only_people_and_max_rate(broker):
    broker.start()
    sub = Subscriber(broker.port, ["t/frames"])
    now = [0.0]
    try:
        sink = MqttSink("127.0.0.1", broker.port, topic="t/frames", only_people=True, max_rate=5,
                        clock=lambda: now[0])
        assert sink.wait_connected(20)
        for i in range(60):  # 2 s at 30 fps (the sink's clock), people on every other frame
            now[0] = i / 30.0
            sink.write(frame_record(i, people=i % 2 == 0))
        sink.close()
        sub.wait(lambda m: len(m) == sink.published)
        got = sub.frames("t/frames")
        assert all(r["persons"] for r in got)
        times = np.array([r["time"] for r in got])
        assert np.all(np.diff(times) >= 0.9 / 5)  # never (much) more than max_rate
        assert len(got) == 10  # and not less: 2 s at 5 per second
        assert sink.published + sink.skipped == 60 and sink.dropped == 0
    finally:
        sub.close()


def test_drops_while_the_broker_is_away_and_reconnects_on_its_own(broker):
    sink = MqttSink("127.0.0.1", broker.port, topic="t/frames", reconnect_max=1)
    try:
        for i in range(5):  # no broker yet: dropped, and write() returns
            assert not sink.write(frame_record(i))
        assert sink.dropped == 5 and sink.published == 0

        broker.start()
        assert sink.wait_connected(30), "did not connect once the broker came up"
        sub = Subscriber(broker.port, ["t/frames"])
        for i in range(5, 10):
            assert sink.write(frame_record(i))
        sub.wait(lambda m: len(m) == 5)
        sub.close()

        broker.stop()  # the broker goes away: the sink notices and drops
        assert wait_until(lambda: not sink.connected)
        assert not sink.write(frame_record(10))
        assert sink.dropped == 6

        broker.start()  # and comes back: the sink reconnects by itself
        assert sink.wait_connected(30), "did not reconnect"
        sub = Subscriber(broker.port, ["t/frames"])
        assert sink.write(frame_record(11))
        got = sub.wait(lambda m: len(m) == 1)
        assert json.loads(got[0][1])["frame"] == 11
        sub.close()
        assert sink.stats()["reconnects"] == 1
    finally:
        sink.close()


def test_missing_paho_names_the_extra(monkeypatch):
    for name in ("paho", "paho.mqtt", "paho.mqtt.client"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'edge-pose\[mqtt\]'"):
        MqttSink()
