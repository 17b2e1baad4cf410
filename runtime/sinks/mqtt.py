"""MQTT publisher (paho-mqtt v2 API), imported only when an ``mqtt://`` sink is asked for."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from runtime.sinks.base import Sink, SinkError, to_json

log = logging.getLogger(__name__)

PAHO_MISSING = ("the mqtt sink needs paho-mqtt 2.x: `pip install 'paho-mqtt>=2'` "
                "(or `pip install 'edgeflag[sinks]'`)")
_MAX_QUEUED = 100  # paho's own buffer; the backlog itself waits in the event log (see handle)


def _import_paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise SinkError(f"{PAHO_MISSING} (import failed: {exc})") from exc
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise SinkError(f"{PAHO_MISSING}; found paho-mqtt 1.x")
    return mqtt


class MqttSink(Sink):
    """Publishes each event as JSON with QoS 1 on a persistent session (``clean_session=False``
    and a client id stable across restarts), and returns only when the broker has acknowledged it.

    That is what at-least-once needs: the caller (the event-log follower) moves its cursor only
    after ``handle`` returns, and retries when it raises. paho's network thread connects and
    reconnects in the background; while the broker is unreachable ``handle`` raises at once
    instead of piling copies into paho's buffer, and the events wait in the log.
    """

    remote = True

    def __init__(self, host: str, topic: str, port: int | None = None, *, qos: int = 1, tls: bool = False,
                 username: str | None = None, password: str | None = None, client_id: str | None = None,
                 ack_timeout: float = 10.0):
        mqtt = _import_paho()
        self.topic, self.qos, self.ack_timeout = topic, qos, ack_timeout
        port = port or (8883 if tls else 1883)
        self.name = f"mqtt://{host}:{port}/{topic}"
        # Stable across restarts (not the pid): the broker keeps the session's in-flight messages.
        client_id = client_id or (f"edgeflag-{socket.gethostname()}-"
                                  f"{hashlib.sha1(self.name.encode()).hexdigest()[:8]}")  # noqa: S324
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set()
        self.client.max_queued_messages_set(_MAX_QUEUED)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._connected = threading.Event()
        self._interrupted = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(host, port, keepalive=60)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        log.info("%s: connected (%s)", self.name, reason)
        if not getattr(reason, "is_failure", False):
            self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self._connected.clear()
        log.warning("%s: disconnected (%s)", self.name, reason)

    @classmethod
    def from_url(cls, url: str) -> MqttSink:
        """``mqtt://[user:pass@]host[:port]/topic[?qos=N&client_id=ID]`` (``mqtts://`` for TLS).

        Give ``client_id`` when two runtimes on one host publish to the same broker and topic.
        """
        parts = urlsplit(url)
        topic = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not topic:
            raise SinkError(f"mqtt sink {url!r}: expected mqtt://host[:port]/topic (e.g. "
                            "mqtt://broker.local/line3/defects)")
        query = parse_qs(parts.query)
        qos = int(query.get("qos", ["1"])[0])
        return cls(parts.hostname, topic, parts.port, qos=qos, tls=parts.scheme == "mqtts",
                   client_id=query.get("client_id", [None])[0],
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        # A fresh connection after start-up takes a moment; an outage is not waited out here.
        if not self._connected.wait(2.0) or self._interrupted.is_set():
            raise SinkError(f"{self.name}: not connected to the broker")
        info = self.client.publish(self.topic, to_json(event), qos=self.qos)
        try:
            info.wait_for_publish(timeout=self.ack_timeout)
        except (ValueError, RuntimeError) as exc:
            raise SinkError(f"{self.name}: publish failed: {exc}") from exc
        if not info.is_published():
            raise SinkError(f"{self.name}: no acknowledgement from the broker in {self.ack_timeout:.0f} s")

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._interrupted.set()
        self.client.disconnect()
        self.client.loop_stop()
