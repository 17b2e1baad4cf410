"""The event-sink interface: one base class, one file per sink (Picamera2 ``outputs/`` style)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np

from runtime.errors import EdgeFlagError


class SinkError(EdgeFlagError):
    """A sink cannot be created (bad spec, missing package) or could not deliver an event."""


class Sink(ABC):
    """Receives events (``defect_start``/``defect_end`` dicts) in order, from one worker thread.

    ``frame`` is the BGR snapshot for flagged events (shared, read-only: copy before drawing).
    Sinks must not assume keys beyond what they print; a failing ``handle`` raises, and the
    dispatcher counts it as failed without stopping the other sinks.
    """

    name: str = "sink"
    # A remote receiver (webhook, MQTT) is fed from the durable event log with a cursor, at least
    # once (runtime.sinks.follower); a local sink gets events from a bounded, lossy queue.
    remote: bool = False
    # True where one commit per batch is much cheaper than one per event (the fsynced log): the
    # dispatcher then hands over what is queued through ``handle_batch``; other sinks get one event
    # at a time, so that an interrupt at shutdown abandons at most the event in hand.
    group_commit: bool = False

    @abstractmethod
    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        """Deliver one event (called from the sink's own worker thread)."""

    def handle_batch(self, items: list[tuple[dict, np.ndarray | None]]) -> list[Exception | None]:
        """Deliver events that were queued together, in order: one outcome per event (``None`` when
        delivered, else the exception). One by one here; a ``group_commit`` sink overrides it."""
        return each_outcome(items, self.handle)

    def close(self) -> None:
        """Flush and release resources (called once, from the worker thread, after the last event)."""

    def interrupt(self) -> None:
        """Cut a slow ``handle`` short at shutdown (retries, waits). Called from another thread."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def each_outcome(items: list[tuple[dict, np.ndarray | None]],
                 deliver: Callable[[dict, np.ndarray | None], None]) -> list[Exception | None]:
    """``deliver`` each ``(event, frame)`` in order; one outcome per event (``None`` or the exception)."""
    outcomes: list[Exception | None] = []
    for event, frame in items:
        try:
            deliver(event, frame)
        except Exception as exc:  # noqa: BLE001 - one failed event must not lose the rest
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


def _jsonable(obj: object) -> object:
    # The loop's scores are numpy scalars; events must serialise without the loop converting them.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def to_json(event: dict) -> str:
    """One-line JSON for an event (numpy scalars, paths and datetimes converted)."""
    return json.dumps(event, ensure_ascii=False, default=_jsonable)
