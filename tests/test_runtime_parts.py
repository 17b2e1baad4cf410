"""Line mode: one verdict per part (pitch, presence, trigger), the reject output timed to the gate,
production counters that survive a restart, and a kill -9 that loses no earlier part event.

The photo-eye input and the reject output run on gpiozero's MockFactory pins (the real library,
its own test pins); presence runs on a rendered moving belt (train/belt.py)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from runtime.parts import NOT_INSPECTED, PitchParts, PresenceParts, TriggerParts, make_tracker
from runtime.presence import PresenceDetector, PresenceSettings
from runtime.reject import EncoderDelay, RejectScheduler
from runtime.session import run
from runtime.settings import CameraConfig, ConfigError
from runtime.triggers import TriggerInput, UdpTrigger
from tests.runtime_support import (
    ListSource,
    belt,
    confident_parts,
    frames_of_parts,
    jsonl,
    kill_9_after_lines,
    quiet,
    run_camera,
    wait_for,
)
from train.belt import moving_belt, presence_windows

gpiozero = pytest.importorskip("gpiozero", reason="gpiozero (a dev dependency) is not installed")
from gpiozero.pins.mock import MockFactory  # noqa: E402


@pytest.fixture
def mock_pins():
    """gpiozero's mock pin factory for the test's duration."""
    previous = gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory = MockFactory()
    yield gpiozero.Device.pin_factory
    gpiozero.Device.pin_factory.reset()
    gpiozero.Device.pin_factory = previous


def feed(tracker, flags: list[bool], label: str = "crack") -> list:
    """Frame verdicts into a tracker (scores: 0.9 flagged, 0.95 ok); the events it gives, finish included."""
    events = []
    for i, flagged in enumerate(flags):
        event = tracker.update(flagged, label if flagged else "ok", 0.9 if flagged else 0.95, i, (None, None))
        events += [event] if event else []
        events += tracker.drain() if hasattr(tracker, "drain") else []
    last = tracker.finish(len(flags) - 1)
    return events + ([last] if last else [])


# ----------------------------------------------------------------------------------------------- pitch
def test_pitch_gives_one_verdict_per_part_and_consecutive_defective_parts_stay_apart():
    # Parts of 4 frames: ok, defect, defect, defect (a run of three), ok with one noisy frame.
    flags = [False] * 4 + [False, True, True, False] + [True] * 4 + [False, False, True, False] + [False] * 4
    events = feed(PitchParts(4), flags)
    assert [(e.part_id, e.verdict, e.first_frame_index, e.last_frame_index) for e in events] == [
        (1, "ok", 0, 3), (2, "defect", 4, 7), (3, "defect", 8, 11), (4, "defect", 12, 15), (5, "ok", 16, 19)]
    assert [e.label for e in events] == ["ok", "crack", "crack", "crack", "ok"]
    assert events[1].flagged_frames == 2 and events[1].peak_frame_index == 5
    assert all(e.complete for e in events)


def test_pitch_part_k_needs_that_many_flagged_frames_and_the_stream_end_marks_the_part_incomplete():
    events = feed(PitchParts(4, part_k=2), [True, False, False, False] + [True, True, False, False] + [True])
    assert [(e.verdict, e.complete) for e in events] == [("ok", True), ("defect", True), ("ok", False)]
    with pytest.raises(ValueError, match="can never happen"):
        PitchParts(3, part_k=4)
    with pytest.raises(ConfigError, match="--parts must be one of"):
        CameraConfig(parts="pitch:0")
    with pytest.raises(ConfigError, match="needs line mode"):
        CameraConfig(reject="gpio:17")


# -------------------------------------------------------------------------------------------- presence
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_presence_counts_every_part_on_a_moving_belt_touching_or_close_while_the_light_drifts(seed):
    rng = np.random.default_rng(seed)
    gaps = [0, 0, 3, 10, 40, 0, 300, 120, 0, 5, 60]
    gaps = [int(g) for g in rng.permutation(gaps)]
    frames, truth = moving_belt(gaps, diameter=int(rng.choice([100, 150])), speed=int(rng.choice([8, 14])),
                                seed=seed, drift=0.3)
    windows = presence_windows(PresenceDetector(), frames)
    assert len(windows) == len(truth), (gaps, windows, [(t[0], t[-1]) for t in truth])
    for (first, last), seen in zip(windows, truth, strict=True):
        # Each window is its own part's crossing, to within the detector's hysteresis.
        assert abs(first - seen[0]) <= 2 and abs(last - seen[-1]) <= 3, (windows, truth)


def test_presence_sees_no_part_on_an_empty_belt_through_drift_a_lighting_step_and_noise():
    frames, _ = moving_belt([], seed=3, drift=0.4, noise=6, lead=5000, tail=0, light_step=(60, 1.35))
    frames = frames[:200]
    assert presence_windows(PresenceDetector(), frames) == []


def test_presence_follows_the_direction_of_travel_setting():
    frames, truth = moving_belt([0, 40, 0], seed=4)
    mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in frames]  # parts now travel right to left
    turned = [np.ascontiguousarray(np.transpose(f, (1, 0, 2))) for f in frames]  # top to bottom
    for settings, video in ((PresenceSettings(reverse=True), mirrored), (PresenceSettings(axis="y"), turned)):
        assert len(presence_windows(PresenceDetector(settings), video)) == len(truth) == 4


def test_presence_judges_a_part_on_its_central_frames_not_on_a_neighbour_half_in_view():
    frames, truth = moving_belt([0], diameter=150, speed=10, seed=5)
    tracker = PresenceParts(PresenceDetector())
    first_part = set(truth[0])
    events = []
    for i, frame in enumerate(frames):
        # The model flags only the very last frame of the first part's crossing (the defective
        # second part, touching it, already half in the picture).
        flagged = i == truth[0][-1]
        event = tracker.update(flagged, "crack" if flagged else "ok", 0.9, i, (frame, None))
        events += [event] if event else []
    events += [e for e in [tracker.finish(len(frames) - 1)] if e]
    assert [e.verdict for e in events] == ["ok", "ok"]
    assert events[0].judged_frames < events[0].frame_count and events[0].last_frame_index in first_part | {
        truth[0][-1] + 1}


# --------------------------------------------------------------------------------------------- trigger
def test_a_photo_eye_on_a_gpio_input_starts_each_part_and_unseen_parts_are_rejected(mock_pins):
    from runtime.triggers import GpioTrigger

    eye = GpioTrigger(27)
    pin = mock_pins.pin(27)
    tracker = TriggerParts(eye, frames=3)
    events = []

    def frame(i, flagged=False):
        event = tracker.update(flagged, "crack" if flagged else "ok", 0.9, i, (None, None))
        events.extend([event] if event else [])
        events.extend(tracker.drain())

    frame(0)  # belt running, no part yet: no part
    pin.drive_high()
    pin.drive_low()
    for i in (1, 2, 3, 4):  # the part's three frames, then one more that belongs to nobody
        frame(i, flagged=i == 2)
    pin.drive_high()
    pin.drive_low()
    frame(5)
    pin.drive_high()  # a second trigger before the next frame: part 2 cut short after one frame
    pin.drive_low()
    pin.drive_high()  # ... and a third with no frame at all between: part 3 never seen
    pin.drive_low()
    frame(6)
    events += [e for e in [tracker.finish(6)] if e] + tracker.drain()
    summary = [(e.part_id, e.verdict, e.label, e.first_frame_index, e.last_frame_index, e.complete)
               for e in events]
    assert summary == [(1, "defect", "crack", 1, 3, True), (2, "ok", "ok", 5, 5, False),
                       (3, "defect", NOT_INSPECTED, -1, -1, False), (4, "ok", "ok", 6, 6, False)]
    assert eye.count == 4 and all(e.reference is not None for e in events)
    tracker.close()


def test_udp_and_stdin_triggers_and_bad_trigger_specs():
    udp = UdpTrigger("127.0.0.1", 0)
    try:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3):
                s.sendto(b"part\n", ("127.0.0.1", udp.port))
        times = wait_for(lambda: udp.take() if udp.count >= 3 else None, timeout=10, what="3 UDP triggers")
        assert len(times) == 3 and times == sorted(times)
    finally:
        udp.close()
    with pytest.raises(ConfigError, match="expected trigger:gpio:PIN"):
        CameraConfig(parts="trigger:serial:/dev/ttyS0")


# ---------------------------------------------------------------------------------------------- reject
def test_reject_pulses_once_per_defective_part_at_its_delay_never_early(mock_pins):
    from gpiozero import DigitalOutputDevice

    out = DigitalOutputDevice(17, initial_value=False)
    reject = RejectScheduler(out, delay_s=0.15, pulse_s=0.03)
    now = time.monotonic()
    due = [reject.schedule(part, now + offset) for part, offset in ((7, 0.0), (8, 0.04), (9, 0.08))]
    reject.close()  # waits for what is still scheduled: parts already past the camera
    assert [p for p, _, _ in reject.pulses] == [7, 8, 9]  # three parts in a row: three pulses
    for (_, on, off), when in zip(reject.pulses, due, strict=True):
        assert on >= when - 0.002 and off - on >= 0.03 - 0.002  # never before the part reaches the gate
    states = [s.state for s in mock_pins.pin(17).states]
    assert states.count(True) == 3 and states[-1] is False
    assert reject.stats["pulsed"] == 3 and reject.stats["scheduled"] == 3


def test_a_verdict_later_than_its_due_time_is_pulsed_at_once_and_counted_late(mock_pins):
    from gpiozero import DigitalOutputDevice

    reject = RejectScheduler(DigitalOutputDevice(18), delay_s=0.01, pulse_s=0.01)
    reject.schedule(1, time.monotonic() - 1.0)
    reject.close()
    assert reject.stats == {"scheduled": 1, "pulsed": 1, "late": 1, "overlapped": 0}


# ------------------------------------------------------------------------------ reject by belt encoder
def encoder_reject(mock_pins, count: int, close_wait_s: float = 0.2):
    """A reject output on GPIO17 timed by ``count`` pulses of an encoder on GPIO22 (mock pins)."""
    from gpiozero import DigitalOutputDevice

    from runtime.encoder import GpioEncoder

    encoder = GpioEncoder(22)
    reject = RejectScheduler(DigitalOutputDevice(17, initial_value=False), pulse_s=0.02,
                             delay=EncoderDelay(encoder, count, close_wait_s=close_wait_s))
    return reject, encoder, mock_pins.pin(22)


def move(pin, pulses: int = 1) -> None:
    """The belt moves ``pulses`` encoder pulses (edges driven on the mock input pin)."""
    for _ in range(pulses):
        pin.drive_high()
        pin.drive_low()


def gate_pulses(mock_pins) -> int:
    """How many times the reject output (GPIO17) has gone on so far."""
    return [s.state for s in mock_pins.pin(17).states].count(True)


def no_pulse_yet(mock_pins, pulses: int, settle: float = 0.1) -> bool:
    """Still ``pulses`` gate pulses after giving the scheduler's thread ``settle`` s to (wrongly) fire."""
    time.sleep(settle)
    return gate_pulses(mock_pins) == pulses


def test_an_encoder_delay_fires_after_exactly_count_pulses_never_before(mock_pins):
    reject, encoder, belt_pin = encoder_reject(mock_pins, count=5)
    reject.schedule(1, time.monotonic())
    move(belt_pin, 4)
    assert no_pulse_yet(mock_pins, 0, settle=0.3) and mock_pins.pin(17).state is False  # 4 of 5: not yet
    move(belt_pin)
    wait_for(lambda: reject.stats["pulsed"] == 1, timeout=10, what="the pulse at the 5th encoder pulse")
    assert reject.pulses[0][1] >= encoder.time_of(5)  # the gate went on after the 5th pulse, not before
    reject.close()
    assert gate_pulses(mock_pins) == 1 and mock_pins.pin(17).state is False
    assert {k: reject.stats[k] for k in ("scheduled", "pulsed", "unfired", "encoder_count")} == {
        "scheduled": 1, "pulsed": 1, "unfired": 0, "encoder_count": 5}


def test_a_stopped_belt_gives_no_pulse_until_it_moves_and_close_counts_what_it_never_brought(mock_pins):
    reject, _, belt_pin = encoder_reject(mock_pins, count=3, close_wait_s=0.2)
    reject.schedule(1, time.monotonic())
    move(belt_pin, 2)
    assert no_pulse_yet(mock_pins, 0, settle=0.3)  # the belt stopped one pulse short: the part waits
    move(belt_pin)
    wait_for(lambda: reject.stats["pulsed"] == 1, timeout=10, what="the pulse once the belt moves")
    reject.schedule(2, time.monotonic())  # a second part, and the belt stops for good
    started = time.monotonic()
    reject.close()
    assert time.monotonic() - started < 5.0  # waited close_wait_s for the belt, not forever
    assert (reject.stats["pulsed"], reject.stats["unfired"], gate_pulses(mock_pins)) == (1, 1, 1)


def test_close_waits_for_a_moving_belt_to_bring_owed_parts_to_the_gate(mock_pins):
    import threading

    reject, _, belt_pin = encoder_reject(mock_pins, count=4, close_wait_s=30.0)
    reject.schedule(1, time.monotonic())
    stop = threading.Event()

    def belt_running():
        while not stop.wait(0.02):
            move(belt_pin)

    runner = threading.Thread(target=belt_running, daemon=True)
    runner.start()
    try:
        reject.close()  # returns once the part has been pulsed, long before close_wait_s
    finally:
        stop.set()
        runner.join()
    assert (reject.stats["pulsed"], reject.stats["unfired"], gate_pulses(mock_pins)) == (1, 0, 1)


def test_two_parts_in_a_row_pulse_at_their_own_counts(mock_pins):
    reject, _, belt_pin = encoder_reject(mock_pins, count=4)
    assert reject.until(reject.schedule(7, time.monotonic())) == {"reject_in_pulses": 4}  # due at 4
    move(belt_pin, 2)
    assert reject.until(reject.schedule(8, time.monotonic())) == {"reject_in_pulses": 4}  # due at 6
    for count, owed in ((3, 0), (4, 1), (5, 1), (6, 2), (7, 2)):  # pulses owed after each encoder pulse
        move(belt_pin)
        wait_for(lambda owed=owed: reject.stats["pulsed"] >= owed, timeout=10, what=f"a pulse at {count}")
        assert no_pulse_yet(mock_pins, owed), f"a pulse too many at encoder count {count}"
    reject.close()
    assert [p for p, _, _ in reject.pulses] == [7, 8] and gate_pulses(mock_pins) == 2


def test_a_part_counts_its_pulses_from_its_reference_time_not_from_its_verdict(mock_pins):
    reject, encoder, belt_pin = encoder_reject(mock_pins, count=5)
    seen = time.monotonic()  # the part's trigger ...
    time.sleep(0.01)
    move(belt_pin, 3)  # ... the belt moves 3 pulses while the model judges it ...
    assert (encoder.count_at(seen), encoder.count_at(time.monotonic())) == (0, 3)
    target = reject.schedule(1, seen)  # ... and the verdict comes: 2 pulses left, not 5
    assert target == 5 and reject.until(target) == {"reject_in_pulses": 2}
    move(belt_pin)
    assert no_pulse_yet(mock_pins, 0)
    move(belt_pin)
    wait_for(lambda: reject.stats["pulsed"] == 1, timeout=10, what="the pulse at count 5")
    reject.close()
    assert reject.pulses[0][1] >= encoder.time_of(5) and gate_pulses(mock_pins) == 1


def test_an_encoder_verdict_later_than_its_count_is_pulsed_at_once_and_counted_late(mock_pins):
    reject, _, belt_pin = encoder_reject(mock_pins, count=3)
    seen = time.monotonic()
    time.sleep(0.01)
    move(belt_pin, 5)  # the part passed the gate 2 pulses ago
    time.sleep(0.05)  # well past the 5 ms allowed for scheduling jitter
    assert reject.until(reject.schedule(1, seen)) == {"reject_in_pulses": -2}
    wait_for(lambda: reject.stats["pulsed"] == 1, timeout=10, what="the late part's pulse, at once")
    reject.close()
    assert {k: reject.stats[k] for k in ("pulsed", "late", "unfired", "encoder_count")} == {
        "pulsed": 1, "late": 1, "unfired": 0, "encoder_count": 5}


def test_reject_delay_is_milliseconds_or_an_encoder_spec_from_flags_or_a_config_file(tmp_path):
    from runtime.camera import build_parser, resolve_args

    line = ("--parts", "trigger:gpio:27", "--reject", "gpio:17")
    flags = vars(build_parser().parse_args([*line, "--reject-delay", "encoder:22:400:low"]))
    assert resolve_args(flags)[0].reject_delay == "encoder:22:400:low"
    assert resolve_args(vars(build_parser().parse_args(["--reject-delay", "800"])))[0].reject_delay == 800.0
    cfg = tmp_path / "line.toml"
    cfg.write_text('[camera]\nparts = "pitch:4"\nreject = "gpio:17"\nreject_delay = "encoder:GPIO22:120"\n')
    assert resolve_args({"config": str(cfg)})[0].reject_delay == "encoder:GPIO22:120"


@pytest.mark.parametrize(("delay", "said"), [
    ("encoder:22", "expected encoder:PIN:COUNT[:low]"),
    ("encoder:22:0", "COUNT >= 1"),
    ("encoder:22:400:lo", "expected encoder:PIN:COUNT[:low]"),
    ("encoder::400", "expected encoder:PIN:COUNT[:low]"),
    ("fast", "expected MS"),
    (-5, "expected MS"),
    ("encoder:17:400", "same pin 17"),  # the reject output's own pin
    ("encoder:27:400", "same pin 27"),  # the photo-eye's
])
def test_bad_reject_delays_say_what_was_expected_with_an_example(delay, said):
    with pytest.raises(ConfigError, match=r"e\.g\. (--reject gpio:17 )?--reject-delay") as caught:
        CameraConfig(parts="trigger:gpio:27", reject="gpio:17", reject_delay=delay)
    assert said in str(caught.value) and repr(delay) in str(caught.value)


def test_pitch_mode_end_to_end_with_the_reject_timed_by_a_moving_belts_encoder(tiny_bundle, part_frames,
                                                                              tmp_path, mock_pins):
    import threading

    belt_pin, stop = mock_pins.pin(22), threading.Event()

    def belt_running():
        while not stop.wait(0.005):
            move(belt_pin)

    runner = threading.Thread(target=belt_running, daemon=True)
    runner.start()
    logs: list[str] = []
    events = tmp_path / "line.jsonl"
    try:
        run(tiny_bundle, ListSource(belt_of(part_frames, "odddo", 5)), log=logs.append,
            **quiet(events=str(events), snapshots=None, parts="pitch:5",
                    reject="gpio:17:5", reject_delay="encoder:22:3"))
    finally:
        stop.set()
        runner.join()
    defective = [e for e in jsonl(events) if e["verdict"] == "defect"]
    assert len(defective) == 3 and all("reject_in_pulses" in e for e in defective)
    assert gate_pulses(mock_pins) == 3  # close() waited for the belt to bring every part to the gate
    assert any("after 3 pulses of encoder:22" in line for line in logs)
    assert any(line.startswith("[stop] reject gpio:17: scheduled 3, pulsed 3") and "unfired 0" in line
               for line in logs), logs


# ----------------------------------------------------------------------------- the camera program, real
@pytest.fixture(scope="module")
def part_frames(tiny_bundle, tiny_run) -> dict[str, list[np.ndarray]]:
    return frames_of_parts(tiny_bundle, tiny_run)


def belt_of(part_frames, pattern: str, frames_per_part: int) -> list[np.ndarray]:
    kinds = {"o": "ok", "d": "defect"}
    return [part_frames[kinds[c]][i % len(part_frames[kinds[c]])] for i, c in enumerate(pattern)
            for _ in range(frames_per_part)]


def test_pitch_mode_end_to_end_one_event_and_one_pulse_per_part_and_counts_kept_across_runs(
        tiny_bundle, part_frames, tmp_path, mock_pins):
    events = tmp_path / "line.jsonl"
    settings = quiet(events=str(events), snapshots=str(tmp_path / "snaps"), parts="pitch:5",
                     reject="gpio:17:5", reject_delay=20)
    summary = run(tiny_bundle, ListSource(belt_of(part_frames, "odddo", 5)), **settings)
    log = jsonl(events)
    assert {e["type"] for e in log} == {"part"}
    assert [(e["part_id"], e["verdict"]) for e in log] == [
        (1, "ok"), (2, "defect"), (3, "defect"), (4, "defect"), (5, "ok")]
    assert [e["first_frame_index"] for e in log] == [0, 5, 10, 15, 20]
    assert all("snapshot" in e and (tmp_path / "snaps" / e["snapshot"].split("/")[-1]).exists()
               for e in log if e["verdict"] == "defect")
    assert all("snapshot" not in e for e in log if e["verdict"] == "ok")
    assert [s.state for s in mock_pins.pin(17).states].count(True) == 3  # three bad parts, three pulses
    assert summary.parts["parts"] == 5 and summary.parts["defective"] == 3 and summary.parts["yield"] == 0.4
    assert "parts: 5 (2 ok, 3 defective" in summary.text()
    saved = json.loads(events.with_suffix(".summary.json").read_text())["parts"]
    assert saved["ok"] == 2

    # The service restarts: counts and part ids go on from the state file.
    again = run(tiny_bundle, ListSource(belt_of(part_frames, "od", 5)), **{**settings, "reject": None})
    assert again.parts["parts"] == 7 and again.parts["restored"] and again.parts["defective"] == 4
    assert [e["part_id"] for e in jsonl(events)][-2:] == [6, 7]


def test_cli_line_mode_errors_say_what_to_do(tiny_bundle, tmp_path):
    out = run_camera("--bundle", str(tiny_bundle), "--source", "x.mp4", "--parts", "every:5")
    assert out.returncode == 2 and "--parts must be one of" in out.stderr and "pitch:8" in out.stderr
    out = run_camera("--bundle", str(tiny_bundle), "--source", "x.mp4", "--reject", "gpio:17")
    assert out.returncode == 2 and "needs line mode" in out.stderr


def test_kill_9_in_line_mode_leaves_every_earlier_part_event_intact_and_a_restart_goes_on(
        tiny_bundle, tiny_run, tmp_path):
    parts = confident_parts(tiny_bundle, tiny_run)
    video, short = tmp_path / "busy.mp4", tmp_path / "short.mp4"
    belt(tiny_run, parts, "odd" * 30, video, frames_per_part=3, fps=50)
    belt(tiny_run, parts, "od", short, frames_per_part=3)
    events, snaps = tmp_path / "events.jsonl", str(tmp_path / "s")
    records = kill_9_after_lines(events, 8, "--bundle", str(tiny_bundle), "--source", str(video),
                                 "--realtime", "--headless", "--parts", "pitch:3",
                                 "--snapshots", snaps, stderr_path=tmp_path / "stderr.txt")
    assert [r["part_id"] for r in records] == list(range(1, len(records) + 1))  # none lost, none torn
    json.loads(events.with_suffix(".counters.json").read_text())  # whole, never half-written
    # The service restarts: the counters file may lag the log (it is written about once a second,
    # off the inference thread); the log is its journal, so every logged part is counted and the
    # next part's id is one no logged part has.
    out = run_camera("--bundle", str(tiny_bundle), "--source", str(short), "--headless", "--parts", "pitch:3",
                     "--events", str(events), "--snapshots", snaps)
    assert out.returncode == 0, out.stderr
    assert "[start] counters restored" in out.stderr, out.stderr
    new = [r["part_id"] for r in parsed_lines(events)[len(records):]][-2:]  # past the torn line, if any
    assert new[0] > len(records) and new == [new[0], new[0] + 1], (len(records), new)
    counted = json.loads(events.with_suffix(".summary.json").read_text())["parts"]
    assert counted["parts"] == new[1] and counted["parts"] >= len(records) + 2, counted
    assert counted["parts"] == counted["ok"] + counted["defective"]


def parsed_lines(log) -> list[dict]:
    """The log's records, skipping a line the kill tore (terminated, not removed, on restart)."""
    records = []
    for line in log.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def test_make_tracker_names_every_mode():
    assert make_tracker("frames") is None
    assert isinstance(make_tracker("pitch:4"), PitchParts)
    assert isinstance(make_tracker("presence"), PresenceParts)
    trigger = TriggerInput()
    assert isinstance(make_tracker("trigger:stdin", trigger=trigger), TriggerParts)


def test_the_status_page_shows_the_production_counters():
    from runtime.frame_loop import FrameLoop
    from runtime.stats import RunStats
    from runtime.status.board import StatusBoard
    from runtime.status.server import _page

    stats = RunStats()
    loop = FrameLoop(None, None, None, PitchParts(2), lambda *_: None, stats)
    for verdict, label in [("ok", "ok"), ("defect", "crack"), ("ok", "ok"), ("ok", "ok")]:
        stats.record_part(verdict, label)
    board = StatusBoard()
    board.attach(loop, None, None, {"artifact": "tflite-int8"})
    board.event({"type": "part", "verdict": "defect", "label": "crack", "score": 0.91, "time": "t",
                 "frame_index": 3, "part_id": 2}, np.zeros((8, 8, 3), np.uint8))
    snap = board.snapshot()
    assert snap["parts"]["parts"] == 4 and snap["recent_defects"][0]["part_id"] == 2
    page = _page(snap)
    assert "yield" in page and "75.00%" in page and "defective crack" in page and "0.91" in page


def test_the_demo_belt_in_pitch_mode_counts_every_part_and_rejects_each_defective_one(tiny_bundle, tiny_run,
                                                                                       tmp_path):
    from train.conveyor import score_parts

    video = tmp_path / "belt.mp4"
    belt(tiny_run, confident_parts(tiny_bundle, tiny_run), "oddddoodo", video, frames_per_part=8)
    events = tmp_path / "events.jsonl"
    done = run_camera("--bundle", str(tiny_bundle), "--source", str(video), "--headless", "--events",
                      str(events), "--no-snapshots", "--parts", "pitch:8")
    assert done.returncode == 0, done.stderr
    result = score_parts(video.with_suffix(".json"), events)
    # Four defective parts in a row: four verdicts, four rejects (frame mode merges them into one).
    assert result.exact_count and result.counted == 9
    assert (result.defective_rejected, len(result.good_rejected)) == (5, 0)
    assert "parts: 9 (4 ok, 5 defective" in done.stderr


def test_a_moving_belt_of_the_runs_own_parts_is_counted_part_by_part_in_presence_mode(tiny_bundle, tiny_run,
                                                                                     tmp_path):
    from train.conveyor import render, score_parts

    video = render(tiny_run, tmp_path / "moving.mp4", moving=True, parts=14, seed=3, speed=14)
    truth = json.loads(video.with_suffix(".json").read_text())
    assert truth["moving"] and 0 in [p["gap_before_px"] for p in truth["parts"]]  # some parts touch
    events = tmp_path / "events.jsonl"
    done = run_camera("--bundle", str(tiny_bundle), "--source", str(video), "--headless", "--events",
                      str(events), "--no-snapshots", "--parts", "presence", "--allow-unfit",
                      "--roi", ",".join(map(str, truth["roi"])))
    assert done.returncode == 0, done.stderr
    result = score_parts(video.with_suffix(".json"), events)
    # The count is the detector's (what the model says of each part is the model's business).
    assert result.exact_count and result.counted == 14, result.text()
