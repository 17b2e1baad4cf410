"""``/metrics`` in the Prometheus text format, from a :class:`StatusBoard` at scrape time.

A custom collector reads the runtime's own counters when Prometheus scrapes, so the numbers are
the ones the run summary reports (no second set of counters to drift), and the loop does no
metrics work beyond the board's histogram.
"""

from __future__ import annotations

from runtime.status.board import LATENCY_BUCKETS_S, StatusBoard

PROMETHEUS_MISSING = ("--http needs prometheus-client for /metrics: `pip install prometheus-client` "
                      "(or `pip install 'edgeflag[status]'`)")


def render_metrics(board: StatusBoard) -> tuple[bytes, str]:
    """(body, content type) of the exposition for ``board``."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(board))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, board: StatusBoard):
        self.board = board

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        b = self.board
        s = b.snapshot()
        yield _counter(CounterMetricFamily, "edgeflag_frames", "Frames decided", s["frames"])
        yield _counter(CounterMetricFamily, "edgeflag_flagged_frames", "Frames over a defect threshold",
                       s["flagged_frames"])
        events = CounterMetricFamily("edgeflag_events", "Events by type and class", labels=["type", "label"])
        for key, n in s["events_by_type_and_class"].items():
            kind, _, label = key.partition(":")
            events.add_metric([kind, label], n)
        yield events
        counts, total = b.latency_histogram()
        cumulative, buckets = 0, []
        for edge, n in zip((*map(str, LATENCY_BUCKETS_S), "+Inf"), counts, strict=True):
            cumulative += n
            buckets.append((edge, cumulative))
        yield HistogramMetricFamily("edgeflag_frame_latency_seconds", "Frame captured to decision",
                                    buckets=buckets, sum_value=total)
        src = s["source"]
        yield _counter(CounterMetricFamily, "edgeflag_source_reconnects", "Live source reopened",
                       src.get("reconnects", 0))
        yield _counter(CounterMetricFamily, "edgeflag_source_dropped_stale",
                       "Frames the latest-frame reader replaced before the loop took them",
                       src.get("dropped_stale", 0))
        yield from _sink_metrics(s["sinks"], CounterMetricFamily, GaugeMetricFamily)
        yield GaugeMetricFamily("edgeflag_healthy", "1 when /healthz is healthy", value=int(s["healthy"]))


def _counter(cls, name: str, doc: str, value) -> object:
    return cls(name, doc, value=float(value or 0))


def _sink_metrics(sinks: dict, counter_cls, gauge_cls):
    delivered = counter_cls("edgeflag_sink_delivered", "Events a sink delivered (this run)", labels=["sink"])
    dropped = counter_cls("edgeflag_sink_dropped", "Events a local sink dropped (queue full)",
                          labels=["sink"])
    pending = gauge_cls("edgeflag_sink_pending", "Events waiting for a sink", labels=["sink"])
    age = gauge_cls("edgeflag_sink_oldest_pending_seconds", "Age of a remote sink's oldest undelivered event",
                    labels=["sink"])
    for name, st in sinks.items():
        if not isinstance(st, dict):
            continue
        delivered.add_metric([name], st.get("delivered", 0))
        pending.add_metric([name], st.get("pending", 0))
        if "dropped" in st:
            dropped.add_metric([name], st["dropped"])
        if "oldest_pending_s" in st:
            age.add_metric([name], st["oldest_pending_s"] or 0.0)
    yield from (delivered, dropped, pending, age)
