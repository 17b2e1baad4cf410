"""k-of-n debouncing: when events start and end, what they carry, edge cases."""

import pytest

from runtime.debounce import KofN


def feed(deb: KofN, pattern: str, label: str = "defect", scores=None) -> list:
    """Feed a pattern like 'x.xx.' (x = flagged); return (kind, frame_index, ...) per event."""
    out = []
    for i, ch in enumerate(pattern):
        score = scores[i] if scores else 0.9
        ev = deb.update(ch == "x", label if ch == "x" else "ok", score, i, payload=f"frame{i}")
        if ev:
            out.append(ev)
    return out


def kinds(events) -> list[tuple[str, int]]:
    return [(e.kind, e.frame_index) for e in events]


def test_three_of_five_starts_on_third_flagged_frame_and_ends_when_condition_fails():
    events = feed(KofN(3, 5), "..xx.x....")
    # frames 2,3,5 flagged: the 3rd flagged frame (5) starts; 3-of-5 fails once frame 2 leaves
    # the window with frame 7 (window 3..7 holds 3 and 5 only).
    assert kinds(events) == [("start", 5), ("end", 7)]
    start, end = events
    assert (start.first_frame_index, start.frame_count) == (2, 3)
    assert (end.first_frame_index, end.last_frame_index, end.frame_count) == (2, 5, 3)


def test_single_noisy_frames_never_trigger():
    assert feed(KofN(3, 5), "x...x...x..x...x") == []
    assert feed(KofN(2, 2), "x.x.x.x.x.") == []


def test_gaps_inside_a_defect_do_not_split_it():
    # One missed frame in the middle of a long defect: still one event.
    events = feed(KofN(3, 5), "xxxx.xxxx.xxx......")
    assert [e.kind for e in events] == ["start", "end"]
    assert events[1].frame_count == 11


def test_k_equals_one_and_n_equals_one_follows_every_frame():
    assert kinds(feed(KofN(1, 1), "x.xx.")) == [("start", 0), ("end", 1), ("start", 2), ("end", 4)]


def test_k_equals_n_needs_consecutive_frames():
    assert kinds(feed(KofN(3, 3), "xx.xx.xxx.")) == [("start", 8), ("end", 9)]


def test_peak_frame_and_score_travel_with_the_start_event():
    scores = [0.0, 0.6, 0.95, 0.7, 0.99, 0, 0, 0, 0, 0]
    start, end = feed(KofN(3, 5), ".xxxx.....", scores=scores)
    assert (start.peak_score, start.peak_frame_index, start.payload) == (0.95, 2, "frame2")
    # The end event reports the peak over the whole event (frame 4 came after the start).
    assert (end.peak_score, end.peak_frame_index, end.payload) == (0.99, 4, None)


def test_event_label_is_the_most_frequent_flagged_class():
    deb = KofN(3, 3)
    events = []
    for i, lab in enumerate(["scratch", "crack", "crack", None, None, None]):
        ev = deb.update(lab is not None, lab or "ok", 0.9 if lab != "scratch" else 0.99, i)
        if ev:
            events.append(ev)
    assert [(e.kind, e.label) for e in events] == [("start", "crack"), ("end", "crack")]


def test_tie_between_classes_goes_to_the_peak_frame_class():
    deb = KofN(2, 2)
    deb.update(True, "crack", 0.6, 0)
    ev = deb.update(True, "scratch", 0.8, 1)
    assert (ev.kind, ev.label, ev.peak_score) == ("start", "scratch", 0.8)


def test_finish_closes_an_open_defect_once():
    deb = KofN(3, 5)
    feed(deb, "xxxxx")
    assert deb.active
    end = deb.finish(4)
    assert (end.kind, end.frame_index, end.frame_count) == ("end", 4, 5)
    assert not deb.active
    assert deb.finish(5) is None


def test_frames_of_an_ended_event_do_not_restart_the_next_one():
    # After the end, a new start needs k fresh flagged frames.
    events = feed(KofN(3, 5), "xxx...x.x..x")
    assert kinds(events) == [("start", 2), ("end", 5)]


def test_uses_frame_indices_as_given_by_the_source():
    deb = KofN(2, 3)
    assert deb.update(True, "d", 0.9, 100) is None
    ev = deb.update(True, "d", 0.9, 105)  # a live source dropped frames 101..104
    assert (ev.frame_index, ev.first_frame_index) == (105, 100)


@pytest.mark.parametrize("k, n", [(0, 5), (6, 5), (-1, 1), (2.5, 5)])
def test_bad_k_n_is_refused_with_an_example(k, n):
    with pytest.raises(ValueError, match="1 <= k <= n"):
        KofN(k, n)
