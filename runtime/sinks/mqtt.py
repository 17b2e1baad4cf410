"""MQTT publisher (paho-mqtt v2 API), imported only when an ``mqtt://`` sink is asked for."""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from runtime.sinks.base import Sink, SinkError, to_json

log = logging.getLogger(__name__)

PAHO_MISSING = ("the mqtt sink needs paho-mqtt 2.x: `pip install 'paho-mqtt>=2'` "
                "(or `pip install 'edgeflag[sinks]'`)")
_MAX_QUEUED = 1000  # events paho keeps while the broker is unreachable; beyond that, counted as failed


def _import_paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise SinkError(f"{PAHO_MISSING} (import failed: {exc})") from exc
    if not hasattr(mqtt, "CallbackAPIVersion"):
        raise SinkError(f"{PAHO_MISSING}; found paho-mqtt 1.x")
    return mqtt


class MqttSink(Sink):
    """Publishes each event as JSON with QoS 1. paho's network thread connects in the background,
    reconnects on its own and keeps (bounded) unsent messages, so a broker outage never blocks."""

    def __init__(self, host: str, topic: str, port: int | None = None, *, qos: int = 1, tls: bool = False,
                 username: str | None = None, password: str | None = None):
        mqtt = _import_paho()
        self._queue_full = mqtt.MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
        self.topic, self.qos = topic, qos
        port = port or (8883 if tls else 1883)
        self.name = f"mqtt://{host}:{port}/{topic}"
        client_id = f"edgeflag-{socket.gethostname()}-{os.getpid()}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set()
        self.client.max_queued_messages_set(_MAX_QUEUED)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = lambda c, u, f, rc, p: log.info("%s: connected (%s)", self.name, rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: log.warning("%s: disconnected (%s)", self.name, rc)
        self.client.connect_async(host, port, keepalive=60)
        self.client.loop_start()
        self._last = None

    @classmethod
    def from_url(cls, url: str) -> MqttSink:
        """``mqtt://[user:pass@]host[:port]/topic[?qos=N]`` (``mqtts://`` for TLS)."""
        parts = urlsplit(url)
        topic = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not topic:
            raise SinkError(f"mqtt sink {url!r}: expected mqtt://host[:port]/topic (e.g. "
                            "mqtt://broker.local/line3/defects)")
        qos = int(parse_qs(parts.query).get("qos", ["1"])[0])
        return cls(parts.hostname, topic, parts.port, qos=qos, tls=parts.scheme == "mqtts",
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        info = self.client.publish(self.topic, to_json(event), qos=self.qos)
        if info.rc == self._queue_full:
            raise SinkError(f"{self.name}: {_MAX_QUEUED} messages already wait for the broker; "
                            "event dropped")
        self._last = info  # NO_CONN is fine: paho sends queued QoS>0 messages after reconnecting

    def close(self) -> None:
        if self._last is not None and self.client.is_connected():
            try:
                self._last.wait_for_publish(timeout=2.0)
            except (ValueError, RuntimeError) as exc:
                log.warning("%s: last event not confirmed at shutdown: %s", self.name, exc)
        self.client.disconnect()
        self.client.loop_stop()
