"""``make_sink(spec)``: one ``--sink`` string to a :class:`Sink`; optional packages load lazily."""

from __future__ import annotations

from runtime.hints import closest
from runtime.sinks.base import Sink, SinkError

SINK_FORMS = """accepted sink forms:
  jsonl:PATH                       append-only, fsynced JSONL event log
  snapshots:DIR                    annotated JPEG of each flagged frame (newest --snapshots-keep kept)
  stdout                           one line per event
  webhook:URL, http(s)://...       POST JSON; at least once (follows the event log, resumes after restarts)
  mqtt://[user:pass@]host[:port]/topic[?qos=N&client_id=ID] (mqtts:// for TLS; needs paho-mqtt;
                                   QoS 1, persistent session, at least once like the webhook)
  gpio:PIN[:pulse_ms]              pulse a GPIO output on defect_start (needs gpiozero)"""

_PREFIXES = ("jsonl", "snapshots", "stdout", "webhook", "mqtt", "mqtts", "gpio", "http", "https")


def make_sink(spec: str, *, snapshots_keep: int = 0) -> Sink:
    """Create the sink named by ``spec`` (see :data:`SINK_FORMS`); :class:`SinkError` if unknown.

    ``snapshots_keep`` bounds a ``snapshots:DIR`` folder like ``--snapshots`` (0 keeps all).
    """
    spec = spec.strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if spec.lower() == "stdout":
        from runtime.sinks.stdout import StdoutSink

        return StdoutSink()
    if kind in ("http", "https") or kind == "webhook":
        from runtime.sinks.webhook import WebhookSink

        return WebhookSink(spec if kind != "webhook" else _need(arg, spec, "webhook:URL"))
    if kind in ("mqtt", "mqtts"):
        from runtime.sinks.mqtt import MqttSink

        return MqttSink.from_url(spec)
    if kind == "jsonl":
        from runtime.sinks.jsonl import JsonlSink

        return JsonlSink(_need(arg, spec, "jsonl:events.jsonl"))
    if kind == "snapshots":
        from runtime.sinks.snapshots import SnapshotSink

        return SnapshotSink(_need(arg, spec, "snapshots:DIR"), keep=snapshots_keep)
    if kind == "gpio":
        from runtime.sinks.gpio import GpioSink

        return GpioSink.from_spec(_need(arg, spec, "gpio:17"))
    raise SinkError(f"unknown sink {spec!r}{_did_you_mean(spec, kind)}\n{SINK_FORMS}")


def _need(arg: str, spec: str, example: str) -> str:
    if not arg.strip():
        raise SinkError(f"sink {spec!r} is missing its argument (e.g. {example})\n{SINK_FORMS}")
    return arg.strip()


def _did_you_mean(spec: str, kind: str) -> str:
    if spec.endswith(".jsonl"):
        return f" (did you mean jsonl:{spec}?)"
    hint = closest(kind, _PREFIXES)
    return f" (did you mean {hint}:...?)" if hint else ""
