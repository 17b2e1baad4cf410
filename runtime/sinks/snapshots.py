"""JPEG snapshots of flagged frames, written atomically, with the label and score drawn on them."""

from __future__ import annotations

import re
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from runtime.fsutil import atomic_write_bytes
from runtime.sinks.base import Sink, SinkError

_BANNER_BGR = (0, 0, 200)  # red: a flagged part
_TEXT_BGR = (255, 255, 255)


def _stamp(value: object) -> str:
    """``2026-03-01T12:00:00.123456+00:00`` -> ``20260301T120000.123Z`` (sortable, filename-safe)."""
    text = str(value)
    try:
        # Python 3.10 (JetPack 6) fromisoformat does not take a trailing "Z".
        t = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return re.sub(r"[^0-9A-Za-z]", "", text)[:24] or "notime"
    t = t.astimezone(timezone.utc) if t.tzinfo else t  # noqa: UP017 - Python 3.10 lacks datetime.UTC
    return t.strftime("%Y%m%dT%H%M%S.") + f"{t.microsecond // 1000:03d}Z"


def snapshot_name(event: dict) -> str:
    """File name for an event's snapshot: ``<UTC time>_f<frame index>_<label>.jpg``.

    Built only from the event (time, frame index, label), so the loop can put the path in the
    event before emitting it and the JSONL record and the file agree.
    """
    index = event.get("frame_index")
    frame = f"f{int(index):08d}" if isinstance(index, int | np.integer) else "fNA"
    label = re.sub(r"[^0-9A-Za-z._-]+", "-", str(event.get("label", "unknown")))[:40] or "unknown"
    return f"{_stamp(event.get('time', 'notime'))}_{frame}_{label}.jpg"


def annotate(frame: np.ndarray, event: dict) -> np.ndarray:
    """A copy of ``frame`` with a banner: label, score, event type and frame index."""
    image = frame.copy()
    h, w = image.shape[:2]
    scale = max(0.4, min(w, h) / 600)
    thickness = max(1, round(scale * 2))
    score = event.get("peak_score", event.get("score"))
    score_text = f" {float(score):.2f}" if isinstance(score, int | float | np.number) else ""
    text = f"{event.get('label', '?')}{score_text}  {event.get('type', '')} #{event.get('frame_index', '?')}"
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, th // 3)
    cv2.rectangle(image, (0, 0), (min(w, tw + 2 * pad), th + base + 2 * pad), _BANNER_BGR, cv2.FILLED)
    cv2.putText(image, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, _TEXT_BGR, thickness,
                cv2.LINE_AA)
    return image


# What snapshot_name produces; only such files are ever pruned, never anything else in the folder.
_SNAPSHOT_FILE = re.compile(r"^(\d{8}T\d{6}\.\d{3}Z|[0-9A-Za-z]{1,24})_f(\d{8}|NA)_[0-9A-Za-z._-]+\.jpg$")


class SnapshotSink(Sink):
    """Writes ``dir/<snapshot_name(event)>`` for every event that carries a frame.

    ``keep`` > 0 bounds the folder: after each write, the oldest snapshots beyond the newest
    ``keep`` are deleted (a line running for months must not fill the board's SD card). Only files
    named like snapshots count or are deleted; names start with the UTC time, so name order is age.
    """

    def __init__(self, directory: str | Path, quality: int = 90, keep: int = 0):
        self.dir = Path(directory)
        self.quality = quality
        self.keep = int(keep)
        self.name = f"snapshots:{self.dir}"
        self.pruned = 0
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"snapshot folder {self.dir}: cannot create it ({exc.strerror}). "
                            "Fix: choose a writable folder with --snapshots") from exc
        self._kept = deque(sorted(p.name for p in self.dir.iterdir() if _SNAPSHOT_FILE.match(p.name)))

    def path_for(self, event: dict) -> Path:
        """Where the snapshot goes: the event's own ``snapshot`` file name if set, else ``snapshot_name``,
        always inside this sink's folder."""
        given = event.get("snapshot")
        return self.dir / (Path(str(given)).name if given else snapshot_name(event))

    def handle(self, event: dict, frame: np.ndarray | None) -> None:
        if frame is None:
            return  # defect_end and other events carry no picture
        ok, jpeg = cv2.imencode(".jpg", annotate(frame, event), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise SinkError(f"could not JPEG-encode the snapshot (frame {frame.shape} {frame.dtype})")
        path = self.path_for(event)
        atomic_write_bytes(path, jpeg.tobytes())
        if _SNAPSHOT_FILE.match(path.name) and path.name not in self._kept:
            self._kept.append(path.name)
        self._prune()

    def _prune(self) -> None:
        while self.keep > 0 and len(self._kept) > self.keep:
            oldest = self._kept.popleft()
            try:
                (self.dir / oldest).unlink()
                self.pruned += 1
            except FileNotFoundError:  # removed by hand meanwhile: nothing to do
                pass
