"""Live sources (cameras, streams): a device read by a :class:`LatestFrameReader` thread."""

from __future__ import annotations

from collections.abc import Callable

from runtime.sources.base import Frame, FrameSource, SourceError
from runtime.sources.latest import Device, LatestFrameReader, ReconnectPolicy, close_quietly


class LiveSource(FrameSource):
    """Latest-frame semantics with reconnects; subclasses only say how to make a :class:`Device`.

    The first open happens in the caller's thread and raises :class:`SourceError` at once (a
    wrong device or URL must fail at start-up, not retry silently forever); every later loss is
    recovered in the background with backoff, when ``reconnect`` is on.
    """

    live = True

    def __init__(self, description: str, make_device: Callable[[], Device], *, reconnect: bool = True,
                 policy: ReconnectPolicy | None = None):
        super().__init__(description)
        self.make_device = make_device
        self.reconnect = reconnect
        self.policy = policy or ReconnectPolicy()
        self._reader: LatestFrameReader | None = None

    def open(self) -> None:
        if self._reader is not None:
            return
        device = None
        try:
            device = self.make_device()
            device.open()
        except Exception as exc:
            if device is not None:
                close_quietly(device)
            if isinstance(exc, SourceError):
                raise
            raise SourceError(f"{self.description}: could not open ({type(exc).__name__}: {exc})") from exc
        self._reader = LatestFrameReader(self.make_device, self.policy, self.reconnect,
                                         name=self.description)
        self._reader.start(device)

    def read(self) -> Frame | None:
        if self.stopped:
            return None
        if self._reader is None:
            raise SourceError(f"{self.description}: read() before open(); use `with open_source(...)`")
        frame = self._reader.get()
        if frame is not None:
            self._count("frames")
        return frame

    def stop(self) -> None:
        super().stop()
        if self._reader is not None:
            self._reader.stop()

    def close(self) -> None:
        self.stop()
        if self._reader is not None:
            self._reader.join()

    @property
    def stats(self) -> dict:
        out = super().stats
        if self._reader is not None:
            out.update(self._reader.stats)
        return out
