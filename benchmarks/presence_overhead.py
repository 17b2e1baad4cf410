"""What ``--parts presence`` costs the frame loop: ``python -m benchmarks scenario presence-overhead``.

Interleaved rounds (shuffled order each round) of the loop's per-frame work, ``FrameLoop.process``,
on 640x480 frames of a moving belt (train/belt.py: round parts crossing the view, drifting light):

* ``frames``   - the default k-of-n debouncer (continuous material);
* ``presence`` - line mode: the software photo-eye of :mod:`runtime.presence` on every frame and
  one verdict per part.

Reported: ``presence / frames`` (the issue's bound: <= 1.05 for the 224-px int8 model), and the
detector's own time per frame next to the bare int8 invoke. Model: MobileNetV2 1.0 at 224 px, int8
(built here through export's converter, random weights: speed does not depend on what it learned).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import numpy as np

from benchmarks.harness import isa_flags, summarize_ms, write_result
from benchmarks.runtime_overhead import build_bench_bundle
from runtime.bundle import Bundle
from runtime.debounce import KofN
from runtime.frame_loop import FrameLoop
from runtime.parts import PresenceParts
from runtime.preprocess import prepare_bgr
from runtime.presence import PresenceDetector
from runtime.sources.base import Frame
from runtime.stats import RunStats
from train.belt import moving_belt


def _loop(engine, bundle: Bundle, artifact, tracker) -> FrameLoop:
    return FrameLoop(engine, bundle.contract, bundle.decider(artifact), tracker, lambda e, f: None,
                     RunStats())


def _time(fn, items, iters: int) -> list[float]:
    out = []
    for i in range(iters):
        t0 = time.perf_counter()
        fn(items[i % len(items)])
        out.append(time.perf_counter() - t0)
    return out


def measure(bundle: Bundle, name: str, frames: list[np.ndarray], rounds: int, iters: int,
            threads: int | None) -> dict:
    """Per-frame timings of the loop in frame mode and presence mode, and of their parts alone."""
    artifact = bundle.get(name)
    stream = [Frame(f, i, time.monotonic()) for i, f in enumerate(frames)]
    with bundle.open(artifact, backend="litert", threads=threads) as engine:
        loops = {"frames": _loop(engine, bundle, artifact, KofN(3, 5)),
                 "presence": _loop(engine, bundle, artifact, PresenceParts(PresenceDetector()))}
        detector = PresenceDetector()
        tensors = [prepare_bgr(f, bundle.contract) for f in frames[:16]]
        cases = {**{k: (loop.process, stream) for k, loop in loops.items()},
                 "detector": (detector.update, frames), "invoke": (engine.run_one, tensors)}
        for fn, items in cases.values():  # warm-up; the detectors learn their background here
            _time(fn, items, 3 * len(items) if fn == detector.update else 20)
        samples: dict[str, list[list[float]]] = {k: [] for k in cases}
        order = list(cases)
        for _ in range(rounds):
            random.shuffle(order)
            for k in order:
                samples[k].append(_time(*cases[k], iters))
        used = engine.threads
    med = {k: statistics.median(statistics.median(r) for r in v) * 1e3 for k, v in samples.items()}
    return {"artifact": name, "model_px": bundle.contract.height, "frame": f"{frames[0].shape[1]}x"
            f"{frames[0].shape[0]}", "threads": used, "median_of_rounds_ms": med,
            "presence_over_frames": med["presence"] / med["frames"],
            "detector_over_invoke": med["detector"] / med["invoke"],
            "per_round_ratio": [statistics.median(p) / statistics.median(f) for p, f in
                                zip(samples["presence"], samples["frames"], strict=True)],
            "timings": {k: summarize_ms([s for r in v for s in r]) for k, v in samples.items()}}


def main(argv: list[str] | None = None) -> int:
    """Run the study and print / save its result."""
    p = argparse.ArgumentParser(prog="python -m benchmarks scenario presence-overhead",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--iters", type=int, default=200, help="frames per case per round")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the core count)")
    p.add_argument("--size", type=int, default=224)
    args = p.parse_args(argv)
    frames, _ = moving_belt([0, 40, 10, 0, 120, 3, 0, 60], diameter=140, speed=14, seed=0)
    bundle = Bundle.load(build_bench_bundle(args.size, 1.0))
    result = measure(bundle, "tflite-int8", frames, args.rounds, args.iters, args.threads)
    path = write_result("presence_overhead", {"isa": isa_flags(), "bound": 1.05, "result": result})
    med = result["median_of_rounds_ms"]
    print(f"{result['artifact']} {result['model_px']} px on {result['frame']} frames, {result['threads']} "
          f"threads ({', '.join(isa_flags()) or 'no SIMD flags read'}):")
    print(f"  loop, frame mode     {med['frames']:.3f} ms/frame")
    print(f"  loop, presence mode  {med['presence']:.3f} ms/frame   x{result['presence_over_frames']:.3f} "
          f"(rounds {min(result['per_round_ratio']):.3f}-{max(result['per_round_ratio']):.3f})")
    share = 100 * result["detector_over_invoke"]
    print(f"  detector alone       {med['detector']:.3f} ms/frame   = {share:.1f}% of the bare int8 invoke "
          f"({med['invoke']:.3f} ms)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
