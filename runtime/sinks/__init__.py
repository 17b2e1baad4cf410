"""Event sinks behind one small interface, fed through :class:`SinkDispatcher` (bounded queue and
worker thread per sink: a slow or failing sink never stalls inference). ``make_sink(spec)``
builds one from a ``--sink`` string; paho-mqtt and gpiozero are imported only when asked for."""

from runtime.sinks.base import Sink, SinkError, to_json
from runtime.sinks.dispatcher import SinkDispatcher
from runtime.sinks.snapshots import snapshot_name
from runtime.sinks.spec import SINK_FORMS, make_sink

__all__ = ["SINK_FORMS", "Sink", "SinkDispatcher", "SinkError", "make_sink", "snapshot_name", "to_json"]
