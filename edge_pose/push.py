"""Frame records pushed to other programs over MQTT (optional extra: pip install 'edge-pose[mqtt]').

`MqttSink` publishes each frame record as JSON to `topic` through paho-mqtt's network thread (`loop_start`):
it connects and reconnects on its own and `write()` never waits on the network. With QoS 0 (the default) a
record written while the broker is unreachable is dropped and counted (`dropped`); with QoS 1/2 paho keeps up
to `queue_size` of them for the reconnection. `only_people` skips frames without people, `max_rate` caps
the messages per second (both counted in `skipped`). `status_topic` (optional) carries a retained
"online" / "offline", "offline" also as the broker's last will when the connection dies.
"""
from __future__ import annotations

import logging
import threading
import time

from edge_pose.rotating import record_json

log = logging.getLogger(__name__)


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise ImportError("MQTT output needs paho-mqtt >= 2: pip install 'edge-pose[mqtt]'") from None
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise ImportError("MQTT output needs paho-mqtt >= 2 (found an older one): pip install -U 'edge-pose[mqtt]'")
    return mqtt


class MqttSink:
    """Publishes frame records (JSON) to an MQTT broker; `write(record, image=None)`, `close()`."""

    def __init__(self, host="localhost", port=1883, topic="edge-pose/frames", qos=0, client_id="",
                 username=None, password=None, tls=False, ca_certs=None, certfile=None, keyfile=None,
                 tls_insecure=False, keepalive=30, max_rate=None, only_people=False, retain=False,
                 status_topic=None, reconnect_max=30.0, queue_size=100, clock=time.monotonic):
        mqtt = _paho()
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2, got %r" % (qos,))
        if max_rate is not None and max_rate <= 0:
            raise ValueError("max_rate must be > 0 messages per second, got %r" % (max_rate,))
        self.host, self.port, self.topic, self.qos, self.retain = host, int(port), topic, int(qos), bool(retain)
        self.max_rate, self.only_people, self.status_topic = max_rate, bool(only_people), status_topic
        self.clock = clock
        self.published = self.dropped = self.skipped = self.connects = 0
        self.connected = False
        self._last = None  # time of the last message (max_rate)
        self._closing = False
        self._online = threading.Event()

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv311)
        if username is not None:
            c.username_pw_set(username, password)
        if tls or ca_certs or certfile:
            c.tls_set(ca_certs=ca_certs, certfile=certfile, keyfile=keyfile)
            c.tls_insecure_set(bool(tls_insecure))
        if status_topic:
            c.will_set(status_topic, "offline", qos=1, retain=True)
        c.reconnect_delay_set(min_delay=1, max_delay=max(1, int(reconnect_max)))
        c.max_queued_messages_set(int(queue_size))
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        self.client = c
        c.connect_async(host, self.port, keepalive=int(keepalive))
        c.loop_start()

    # ---------------------------------------------------------------------------------------- network thread

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        self.connects += 1
        self.connected = True
        log.info("MQTT %s %s:%d", "connected to" if self.connects == 1 else "reconnected to", self.host, self.port)
        if self.status_topic:
            client.publish(self.status_topic, "online", qos=1, retain=True)
        self._online.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected = False
        self._online.clear()
        if not self._closing:
            log.warning("MQTT connection to %s:%d lost (%s); reconnecting", self.host, self.port, reason_code)

    def _on_connect_fail(self, client, userdata):
        log.debug("MQTT broker %s:%d unreachable; retrying", self.host, self.port)

    # ---------------------------------------------------------------------------------------- pipeline side

    def wait_connected(self, timeout=None):
        """Block until connected (True) or `timeout` seconds pass (False). The pipeline does not need it."""
        return self._online.wait(timeout)

    def _rate_ok(self):
        """At most `max_rate` per second: a message at least 0.9 period after the previous one (the 10% absorbs
        capture jitter, so that 30 fps capped at 10 sends every third frame, not every fourth)."""
        if not self.max_rate:
            return True
        now = self.clock()
        if self._last is not None and now - self._last < 0.9 / self.max_rate:
            return False
        self._last = now
        return True

    def write(self, record, image=None):
        """Publish one frame record (the image is ignored); never waits on the network."""
        if self.only_people and not record.get("persons"):
            self.skipped += 1
            return False
        if not self._rate_ok():
            self.skipped += 1
            return False
        if self.qos == 0 and not self.client.is_connected():
            self.dropped += 1
            return False
        info = self.client.publish(self.topic, record_json(record), qos=self.qos, retain=self.retain)
        if info.rc != 0:  # MQTT_ERR_SUCCESS; NO_CONN / QUEUE_SIZE otherwise
            self.dropped += 1
            return False
        self.published += 1
        return True

    def stats(self):
        """Counters for /metrics."""
        return {"published": self.published, "dropped": self.dropped, "skipped": self.skipped,
                "connected": self.connected, "reconnects": max(0, self.connects - 1)}

    def close(self, timeout=2.0):
        """Say "offline" (when a status topic is set), flush what is queued, disconnect, stop the thread."""
        if self._closing:
            return
        self._closing = True
        if self.status_topic and self.client.is_connected():
            info = self.client.publish(self.status_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # disconnected meanwhile
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
