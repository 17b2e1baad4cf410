"""A conveyor-belt video of held-out parts, and scoring the camera program's events against it.

``python -m train.conveyor render --run runs/latest --out data/conveyor.mp4`` writes an mp4 in
which parts from the run's *test* split pass under the camera one after the other, each held
for ``frames_per_part`` frames (as a part sits in the field of view while the belt moves), and
a truth file next to it (``conveyor.json``: which frames show which part, defective or not).

``python -m train.conveyor score --truth data/conveyor.json --events events/demo.jsonl`` matches
the ``defect_start``/``defect_end`` events of ``python -m runtime.camera`` to the parts: a
defective part is *caught* when an event's flagged frames overlap its frames, *missed* when
none does; an event overlapping only good parts is a *false alarm*. Misses and false alarms
are reported, not errors: the exit status is non-zero only for malformed input.

There are no empty-belt frames between parts: the model only ever saw parts. In frame mode
(k-of-n windows) consecutive defective parts therefore merge into one event; the scorer counts every
defective part that event covers. The belt is an indexed line (a part every ``frames_per_part``
frames), so line mode ``--parts pitch:8`` gives one ``part`` event per part, and a log of part
events is scored per part (:func:`score_parts`): parts counted against the truth, defective parts
rejected (one reject pulse each), good parts rejected.

Imports only numpy, OpenCV and :mod:`runtime` (never TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from runtime.errors import EdgeFlagError
from runtime.fsutil import atomic_write_json
from runtime.image_io import read_image
from runtime.split_file import read_split_file


class ConveyorError(EdgeFlagError):
    """A run, truth file or event log is missing or malformed."""


@dataclass(frozen=True)
class RenderConfig:
    """Every default of the demo video, defined once."""

    parts: int = 60  # parts on the belt (drawn from the run's test split)
    frames_per_part: int = 8  # frames each part stays in view (>= n of the k-of-n debouncer)
    fps: float = 10.0
    seed: int = 0
    defect_share: float = 0.3  # share of defective parts on the belt (a line is mostly good parts)
    # A belt that moves (train/belt.py): 640x480 frames, each part cut round out of its photo at
    # part_px and carried through the view at speed px per frame, touching or apart; else one
    # still picture per part for frames_per_part frames (an indexed line).
    moving: bool = False
    speed: int = 12
    part_px: int = 192


# ------------------------------------------------------------------------------------------- render
def read_test_split(run: str | Path) -> tuple[Path, list[tuple[str, str]], dict]:
    """``(data_dir, [(relative path, label)], run manifest)`` of a run's test split."""
    run = Path(run)
    try:
        manifest = json.loads((run / "run.json").read_text())
        split_file = run / manifest["files"]["splits"]["test"]
        items = read_split_file(split_file, ConveyorError)
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise ConveyorError(f"{run}: not a complete run directory ({exc}); expected run.json and "
                            "splits/test.txt written by `python -m train`") from exc
    if not items:
        raise ConveyorError(f"{split_file}: expected 'path<TAB>label' lines, found none")
    return Path(manifest["data_dir"]), items, manifest


def plan_parts(items: list[tuple[str, str]], ok_label: str, config: RenderConfig) -> list[tuple[str, str]]:
    """A seeded belt sequence: ``config.parts`` test images, about ``defect_share`` defective."""
    rng = np.random.default_rng(config.seed)
    good = [i for i in items if i[1] == ok_label]
    bad = [i for i in items if i[1] != ok_label]
    n_bad = min(len(bad), int(round(config.parts * config.defect_share)))
    n_good = min(len(good), config.parts - n_bad)
    pick = [good[j] for j in rng.permutation(len(good))[:n_good]]
    pick += [bad[j] for j in rng.permutation(len(bad))[:n_bad]]
    return [pick[j] for j in rng.permutation(len(pick))]


def render_video(parts: list[tuple[str, str]], data_dir: Path, out: str | Path, ok_label: str,
                 frames_per_part: int = RenderConfig.frames_per_part,
                 fps: float = RenderConfig.fps) -> Path:
    """Write ``out`` (mp4) showing each part for ``frames_per_part`` frames, plus ``out.json``.

    Frames have the size of the first image; other sizes are resized to it (area).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images = [read_image(data_dir / rel) for rel, _ in parts]
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise ConveyorError(f"{out}: OpenCV cannot write an mp4v video here (no FFMPEG in this build?)")
    truth = []
    try:
        for i, ((rel, label), rgb) in enumerate(zip(parts, images, strict=True)):
            if rgb.shape[:2] != (h, w):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            for _ in range(frames_per_part):
                writer.write(bgr)
            first = i * frames_per_part
            truth.append({"part": i, "first_frame": first, "last_frame": first + frames_per_part - 1,
                          "label": label, "defective": label != ok_label, "image": rel})
    finally:
        writer.release()
    atomic_write_json(out.with_suffix(".json"),
                      {"video": out.name, "data_dir": str(data_dir), "fps": fps,
                       "frame_count": len(parts) * frames_per_part, "frames_per_part": frames_per_part,
                       "ok_label": ok_label, "parts": truth})
    return out


def render(run: str | Path, out: str | Path, **options) -> Path:
    """Render the demo video of held-out parts of ``run`` (options: :class:`RenderConfig` fields)."""
    config = RenderConfig(**options)
    if config.frames_per_part < 1 or config.parts < 1 or config.speed < 1 or config.part_px < 32:
        raise ConveyorError(f"need parts >= 1, frames_per_part >= 1, speed >= 1, part_px >= 32; got {config}")
    data_dir, items, manifest = read_test_split(run)
    parts = plan_parts(items, manifest["ok_label"], config)
    if config.moving:
        return render_moving(parts, data_dir, out, manifest["ok_label"], config)
    return render_video(parts, data_dir, out, manifest["ok_label"], config.frames_per_part, config.fps)


GAPS_PX = (0, 0, 6, 20, 50, 100, 180)  # edge to edge at part_px 192: touching, close, spaced


def render_moving(parts: list[tuple[str, str]], data_dir: Path, out: str | Path, ok_label: str,
                  config: RenderConfig) -> Path:
    """Write ``out`` (mp4, 640x480) of the parts moving through the view, plus ``out.json``.

    Truth per part: the frames in which it covers the middle column (the inspection line), and the
    ROI to give the camera (``--roi``): a square of ``part_px`` around the middle of the view.
    """
    from train.belt import belt_frames

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    sprites = [_sprite(data_dir, rel, config.part_px) for rel, _ in parts]
    gaps = [int(round(g * config.part_px / 192)) for g in rng.choice(GAPS_PX, len(parts) - 1)]
    frames, seen = belt_frames(sprites, gaps, config.speed, rng, drift=0.15, noise=3.0, belt_grey=70.0,
                               lead=200, tail=config.part_px)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), config.fps, (w, h))
    if not writer.isOpened():
        raise ConveyorError(f"{out}: OpenCV cannot write an mp4v video here (no FFMPEG in this build?)")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    half_x, half_y = config.part_px / 2 / w, config.part_px / 2 / h
    truth = [{"part": i, "first_frame": f[0], "last_frame": f[-1], "label": label,
              "defective": label != ok_label, "image": rel, "gap_before_px": gaps[i - 1] if i else None}
             for i, ((rel, label), f) in enumerate(zip(parts, seen, strict=True))]
    atomic_write_json(out.with_suffix(".json"),
                      {"video": out.name, "data_dir": str(data_dir), "fps": config.fps, "moving": True,
                       "frame_count": len(frames), "speed_px": config.speed, "part_px": config.part_px,
                       "roi": [round(0.5 - half_x, 4), round(0.5 - half_y, 4), round(0.5 + half_x, 4),
                               round(0.5 + half_y, 4)],
                       "ok_label": ok_label, "parts": truth})
    return out


def _sprite(data_dir: Path, rel: str, px: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo ``rel`` as a sprite at ``px``: (BGR float texture, alpha of the part alone).

    A photo of the synthetic set carries its generator's own outline (re-rendered from its seed and
    checked against the photo); any other photo is cut out by :func:`_cut_out`.
    """
    from train.synth import part_and_mask

    rgb = read_image(data_dir / rel)
    drawn = part_and_mask(data_dir, rel)
    # JPEG moves pixels by a few levels; a stale or foreign file differs everywhere.
    if drawn is None or drawn[0].shape != rgb.shape or np.abs(drawn[0].astype(np.int16) - rgb).mean() > 6:
        return _cut_out(rgb, px)
    bgr = cv2.cvtColor(cv2.resize(rgb, (px, px), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2BGR)
    return bgr.astype(np.float32), cv2.resize(drawn[1], (px, px), interpolation=cv2.INTER_LINEAR)


def _cut_out(rgb: np.ndarray, px: int) -> tuple[np.ndarray, np.ndarray]:
    """A photo as a sprite: BGR at ``px``, alpha the part alone (a best guess from the pixels).

    The part is what differs in colour from the photo's own background (the median of its border)
    by more than 30 levels in some channel. The largest such piece is filled to its outline, so a
    dark crack or pit on the part stays on it; only openings too wide to be a defect (a bore) show
    the belt through. The photo's belt stays behind, so parts on the moving belt show their own
    outline (and meet at a waist when they touch), as on a real line.
    """
    bgr = cv2.cvtColor(cv2.resize(rgb, (px, px), interpolation=cv2.INTER_CUBIC), cv2.COLOR_RGB2BGR)
    smooth = cv2.GaussianBlur(bgr.astype(np.float32), (0, 0), px / 96)
    edge = max(2, px // 16)
    border = np.concatenate([smooth[:edge].reshape(-1, 3), smooth[-edge:].reshape(-1, 3),
                             smooth[:, :edge].reshape(-1, 3), smooth[:, -edge:].reshape(-1, 3)])
    stands_out = np.abs(smooth - np.median(border, axis=0)).max(axis=2) > 30
    body = _outline_filled(stands_out.astype(np.uint8), px)
    # Belt-like pixels inside the outline: a bore survives an opening by px/12, a crack does not.
    opening = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, px // 12),) * 2)
    bore = cv2.morphologyEx((~stands_out & (body > 0)).astype(np.uint8), cv2.MORPH_OPEN, opening)
    alpha = cv2.GaussianBlur((body & (1 - bore)).astype(np.float32), (0, 0), px / 192)
    return bgr.astype(np.float32), alpha


def _outline_filled(mask: np.ndarray, px: int) -> np.ndarray:
    """The largest piece of ``mask`` (uint8 0/1), cleaned up and filled to its outer outline."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (max(3, px // 48),) * 2)
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(mask)
    if contours:
        cv2.drawContours(filled, [max(contours, key=cv2.contourArea)], -1, 1, cv2.FILLED)
    return filled


# -------------------------------------------------------------------------------------------- score
@dataclass
class Score:
    """Events matched to parts."""

    parts: int = 0
    defective: int = 0
    caught: int = 0
    missed: list[dict] = field(default_factory=list)
    false_alarms: list[dict] = field(default_factory=list)
    split: int = 0  # defective parts covered by more than one event
    events: int = 0
    label_matches: int = 0  # caught parts whose event class equals the part's class

    def text(self) -> str:
        """Human summary, one fact per line."""
        lines = [f"parts on the belt:  {self.parts} ({self.defective} defective)",
                 f"defects caught:     {self.caught}/{self.defective}",
                 f"defects missed:     {len(self.missed)}",
                 f"false alarms:       {len(self.false_alarms)} (events on good parts only)",
                 f"defect events:      {self.events} ({self.split} defective parts split in 2+ events)",
                 f"class agreement:    {self.label_matches}/{self.caught} caught parts"]
        lines += [f"  missed part {p['part']} ({p['label']}, frames {p['first_frame']}-{p['last_frame']}): "
                  f"{p['image']}" for p in self.missed[:10]]
        lines += [f"  false alarm at frames {e['first']}-{e['last']} ({e['label']} {e['peak_score']}) on "
                  f"part(s) {e['parts']}" for e in self.false_alarms[:10]]
        return "\n".join(lines)


def read_events(path: str | Path) -> list[dict]:
    """Event dicts of a JSONL log; a torn last line (power cut while writing) is skipped."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConveyorError(f"event log {path}: cannot read it ({exc.strerror or exc})") from exc
    lines = text.split("\n")
    events = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if n == len(lines):  # no newline after it: an interrupted write, not a bad log
                print(f"warning: {path}: ignoring torn last line", file=sys.stderr)
                continue
            raise ConveyorError(f"event log {path} line {n}: not JSON ({exc}); expected one JSON "
                                "event per line as written by `python -m runtime.camera`") from exc
    return events


def event_spans(events: list[dict], last_frame: int) -> list[dict]:
    """``{first, last, label, peak_score}`` per defect event (start paired with its end)."""
    spans, open_span = [], None
    for e in events:
        kind = e.get("type")
        try:
            if kind == "defect_start":
                open_span = {"first": int(e.get("first_frame_index", e["frame_index"])), "last": last_frame,
                             "label": e["label"], "peak_score": e["peak_score"]}
                spans.append(open_span)
            elif kind == "defect_end" and open_span is not None:
                open_span["last"] = int(e.get("last_frame_index", e["frame_index"]))
                open_span["peak_score"] = e["peak_score"]
                open_span = None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConveyorError(f"event {e}: missing or bad field {exc}; expected type, frame_index, "
                                "label, peak_score") from exc
    return spans


def read_truth(truth: str | Path) -> tuple[list[dict], int]:
    """(parts, last frame index) of a truth file written by :func:`render_video`."""
    try:
        meta = json.loads(Path(truth).read_text())
        return meta["parts"], int(meta["frame_count"]) - 1
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ConveyorError(f"truth file {truth}: unreadable or incomplete ({exc}); expected the JSON "
                            "written by `python -m train.conveyor render`") from exc


def score(truth: str | Path, events: str | Path) -> Score:
    """Match the event log's defect windows to the truth file of :func:`render_video`."""
    parts, last = read_truth(truth)
    spans = event_spans(read_events(events), last)
    result = Score(parts=len(parts), defective=sum(p["defective"] for p in parts), events=len(spans))
    hits: dict[int, list[dict]] = {}
    for span in spans:
        covered = [p for p in parts if p["first_frame"] <= span["last"] and p["last_frame"] >= span["first"]]
        bad = [p for p in covered if p["defective"]]
        for p in bad:
            hits.setdefault(p["part"], []).append(span)
        if not bad:
            result.false_alarms.append({**span, "parts": [p["part"] for p in covered]})
    for p in parts:
        if not p["defective"]:
            continue
        if p["part"] in hits:
            result.caught += 1
            result.split += len(hits[p["part"]]) > 1
            result.label_matches += any(s["label"] == p["label"] for s in hits[p["part"]])
        else:
            result.missed.append(p)
    return result


@dataclass
class PartScore:
    """Line mode's ``part`` events matched to the truth, one event per part expected."""

    parts: int = 0
    defective: int = 0
    counted: int = 0  # part events in the log
    defective_rejected: int = 0
    good_rejected: list[dict] = field(default_factory=list)
    defective_passed: list[dict] = field(default_factory=list)
    uncounted: list[dict] = field(default_factory=list)  # truth parts no event covers
    split: int = 0  # truth parts covered by more than one part event
    class_matches: int = 0  # rejected defective parts whose event class is the part's class

    @property
    def exact_count(self) -> bool:
        """One event per truth part, none extra, none missing."""
        return self.counted == self.parts and not self.uncounted and not self.split

    def text(self) -> str:
        """Human summary, one fact per line."""
        good = self.parts - self.defective
        rate = 100 * len(self.good_rejected) / good if good else 0.0
        lines = [f"parts on the belt:  {self.parts} ({self.defective} defective)",
                 f"parts counted:      {self.counted} ({'exact' if self.exact_count else 'NOT exact'}: "
                 f"{len(self.uncounted)} uncounted, {self.split} split)",
                 f"defective rejected: {self.defective_rejected}/{self.defective} (one reject pulse each)",
                 f"good rejected:      {len(self.good_rejected)}/{good} ({rate:.1f}%)",
                 f"class agreement:    {self.class_matches}/{self.defective_rejected} rejected defective"]
        lines += [f"  defective part {p['part']} passed ({p['label']}, frames {p['first_frame']}-"
                  f"{p['last_frame']}): {p['image']}" for p in self.defective_passed[:10]]
        lines += [f"  good part {p['part']} rejected (as {p['event_label']}): {p['image']}"
                  for p in self.good_rejected[:10]]
        return "\n".join(lines)


def score_parts(truth: str | Path, events: str | Path) -> PartScore:
    """Match each ``part`` event to the truth part its frames overlap most."""
    parts, _ = read_truth(truth)
    log = [e for e in read_events(events) if e.get("type") == "part"]
    result = PartScore(parts=len(parts), defective=sum(p["defective"] for p in parts), counted=len(log))
    hits: dict[int, list[dict]] = {}
    for e in log:
        try:
            first, last = int(e["first_frame_index"]), int(e["last_frame_index"])
            if "verdict" not in e or "label" not in e:
                raise KeyError("verdict" if "verdict" not in e else "label")
        except (KeyError, TypeError, ValueError) as exc:
            raise ConveyorError(f"part event {e}: missing or bad field {exc}; expected first_frame_index, "
                                "last_frame_index, verdict, label") from exc
        overlap = [(min(last, p["last_frame"]) - max(first, p["first_frame"]), p["part"]) for p in parts]
        best, part = max(overlap)
        if best >= 0:
            hits.setdefault(part, []).append(e)
    for p in parts:
        events_of = hits.get(p["part"], [])
        if not events_of:
            result.uncounted.append(p)
            continue
        result.split += len(events_of) > 1
        rejected = [e for e in events_of if e["verdict"] == "defect"]
        if p["defective"] and rejected:
            result.defective_rejected += 1
            result.class_matches += any(e["label"] == p["label"] for e in rejected)
        elif p["defective"]:
            result.defective_passed.append(p)
        elif rejected:
            result.good_rejected.append({**p, "event_label": rejected[0]["label"]})
    return result


def _score_text(truth: str | Path, events: str | Path) -> str:
    """Per part when the log holds line mode's part events, else per defect window."""
    if any(e.get("type") == "part" for e in read_events(events)):
        return score_parts(truth, events).text()
    return score(truth, events).text()


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m train.conveyor render|score``."""
    p = argparse.ArgumentParser(prog="python -m train.conveyor", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="write the conveyor video + truth JSON from a run's test split")
    r.add_argument("--run", default="runs/latest")
    r.add_argument("--out", default="data/conveyor.mp4")
    d = RenderConfig()
    for name, value in asdict(d).items():
        if isinstance(value, bool):
            r.add_argument(f"--{name.replace('_', '-')}", action="store_true", help="(off by default)")
            continue
        r.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                       help=f"(default {value})")
    s = sub.add_parser("score", help="compare an event log with the truth JSON")
    s.add_argument("--truth", default="data/conveyor.json")
    s.add_argument("--events", default="events/demo.jsonl")
    args = vars(p.parse_args(argv))
    try:
        if args.pop("command") == "render":
            out = render(args.pop("run"), args.pop("out"), **args)
            print(f"wrote {out} and {out.with_suffix('.json')}")
        else:
            print(_score_text(args["truth"], args["events"]))
    except EdgeFlagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
