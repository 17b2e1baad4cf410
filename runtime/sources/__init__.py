"""Frame sources: ``open_source(spec)`` for cameras, streams, pipelines, video files and folders.

Live sources (cameras, streams) go through :class:`LatestFrameReader` (newest frame only,
reconnects with backoff); files and folders deliver every frame in order. Frames are BGR uint8.
Implementations are imported lazily, so optional libraries (Picamera2) load only when asked for.
"""

from runtime.sources.base import Frame, FrameSource, SourceError, as_bgr
from runtime.sources.latest import Device, LatestFrameReader, ReconnectPolicy
from runtime.sources.live import LiveSource
from runtime.sources.spec import ACCEPTED_FORMS, open_source

__all__ = ["ACCEPTED_FORMS", "Device", "Frame", "FrameSource", "LatestFrameReader", "LiveSource",
           "ReconnectPolicy", "SourceError", "as_bgr", "open_source"]
