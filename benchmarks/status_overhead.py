"""What ``--http`` costs the frame loop: ``python -m benchmarks.status_overhead``.

Per model, interleaved rounds (shuffled order each round) of the loop's per-frame work on 640x480
camera frames, ``FrameLoop.process``:

* ``off``     - no status page (the default);
* ``browser`` - ``--http`` on: the board told of every frame, its server running, and a browser in
  another process loading the page as the page itself asks (every 2 s: the HTML, the latest
  overlay frame and all eight defect snapshots) while Prometheus scrapes ``/metrics`` and
  ``/healthz`` every second;
* ``hammer``  - the same server with a client fetching ``/frame.jpg`` and ``/metrics`` back to
  back as fast as it can: a worst case no browser produces, reported to show the ceiling.

The client runs in its own process, as a browser would, so that only the server's work (its
threads, JPEG encoding, the GIL they take) lands on the loop. Reported: ``browser / off`` (the
issue's bound: <= 1.03) and ``hammer / off``. Models: the 224-px MobileNetV2 1.0 int8 that a line
runs (built here, random weights) and the demo bundle's int8 when it exists.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time

from benchmarks.harness import isa_flags, machine_info, summarize_ms, write_result
from benchmarks.runtime_overhead import CAMERA, build_bench_bundle, demo_bundle, synthetic_frames
from runtime.bundle import Bundle
from runtime.debounce import KofN
from runtime.frame_loop import FrameLoop
from runtime.sources.base import Frame
from runtime.stats import RunStats
from runtime.status.board import StatusBoard
from runtime.status.server import StatusServer

# The page's own cadence (server.py: <meta http-equiv="refresh" content="2">) and a 1 s scrape.
_CLIENT = r"""
import sys, threading, time, urllib.request
base, mode = sys.argv[1], sys.argv[2]
on = threading.Event()
def get(path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        r.read()
def browser():
    next_page = next_scrape = 0.0
    while True:
        on.wait()
        now = time.monotonic()
        if now >= next_page:
            for path in ["/", "/frame.jpg"] + [f"/snapshot/{i}.jpg" for i in range(8)]:
                get(path)
            next_page = now + 2.0
        if now >= next_scrape:
            get("/metrics"); get("/healthz")
            next_scrape = now + 1.0
        time.sleep(0.02)
def hammer():
    while True:
        on.wait()
        get("/frame.jpg"); get("/metrics")
threading.Thread(target=browser if mode == "browser" else hammer, daemon=True).start()
for line in sys.stdin:
    (on.set if line.strip() == "on" else on.clear)()
    print("ok", flush=True)
"""


class Client:
    """A browser-like HTTP client in its own process, switched on and off between rounds."""

    def __init__(self, url: str, mode: str):
        self.proc = subprocess.Popen([sys.executable, "-c", _CLIENT, url.rstrip("/"), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def switch(self, on: bool) -> None:
        self.proc.stdin.write("on\n" if on else "off\n")
        self.proc.stdin.flush()
        self.proc.stdout.readline()  # wait for the acknowledgement: the state holds from here
        if on:
            time.sleep(0.1)  # let its first requests start, so the round sees a busy server

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _board_with_snapshots(loop: FrameLoop, frames: list[Frame], info: dict) -> StatusBoard:
    """A board like a running line's: attached to the loop, with eight defect snapshots kept."""
    board = StatusBoard()
    board.attach(loop, None, None, info)
    for i in range(8):
        board.event({"type": "defect_start", "label": "defect", "peak_score": 0.9, "id": f"x-{i}"},
                    frames[i % len(frames)].image)
    return board


def measure(bundle: Bundle, name: str, rounds: int, iters: int) -> dict:
    """Interleaved per-frame timings of off / browser / hammer for one artifact."""
    artifact = bundle.get(name)
    frames = [Frame(f, i, 0.0) for i, f in enumerate(synthetic_frames(8, CAMERA))]
    with bundle.open(artifact, backend="litert") as engine:
        loop = FrameLoop(engine, bundle.contract, bundle.decider(artifact), KofN(3, 5), lambda e, f: None,
                         RunStats())
        board = _board_with_snapshots(loop, frames, {"artifact": name, "bundle": str(bundle.root)})
        with StatusServer(board, "127.0.0.1", 0) as server:
            clients = {m: Client(server.url, m) for m in ("browser", "hammer")}
            try:
                samples = _rounds(loop, board, frames, clients, rounds, iters)
            finally:
                for c in clients.values():
                    c.close()
    per_round = {k: [statistics.median(r) for r in v] for k, v in samples.items()}
    med = {k: statistics.median(v) * 1e3 for k, v in per_round.items()}
    return {"artifact": name, "model_px": bundle.contract.height, "frame": f"{CAMERA[1]}x{CAMERA[0]}",
            "threads": engine.threads, "median_of_rounds_ms": med,
            "browser_over_off": med["browser"] / med["off"], "hammer_over_off": med["hammer"] / med["off"],
            "per_round_ratio_browser": [b / o for b, o in
                                        zip(per_round["browser"], per_round["off"], strict=True)],
            "timings": {k: summarize_ms([s for r in v for s in r]) for k, v in samples.items()}}


def _rounds(loop, board, frames, clients, rounds: int, iters: int) -> dict[str, list[list[float]]]:
    samples: dict[str, list[list[float]]] = {"off": [], "browser": [], "hammer": []}
    for frame in frames * 3:  # warm-up: engine, caches, the board's first overlay
        board.frame(frame.image, loop.process(frame))
    order = list(samples)
    for _ in range(rounds):
        random.shuffle(order)
        for variant in order:
            client = clients.get(variant)
            if client:
                client.switch(True)
            samples[variant].append(_time_frames(loop, board if client else None, frames, iters))
            if client:
                client.switch(False)
    return samples


def _time_frames(loop, board, frames, iters: int) -> list[float]:
    out = []
    for i in range(iters):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        decision = loop.process(frame)
        if board is not None:  # exactly what the driver adds per frame with --http
            board.frame(frame.image, decision)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write results/status_overhead-*.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.status_overhead",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="bundles/latest", help="also time this bundle's int8 (when present)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--iters", type=int, default=200, help="frames per variant per round")
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    models = [(Bundle.load(build_bench_bundle(224, 1.0)), "MobileNetV2 1.0 at 224 px (built)")]
    demo, what = demo_bundle(args.bundle, 96)
    if "built" not in what:
        models.append((demo, what))
    rows = [measure(b, "tflite-int8", args.rounds, args.iters) for b, _ in models]
    print_table(rows, [w for _, w in models])
    path = write_result("status_overhead", {"models": [w for _, w in models], "bound": 1.03, "rows": rows},
                        args.out)
    print(f"wrote {path}")
    return 0


def print_table(rows: list[dict], models: list[str]) -> None:
    print("models: " + "; ".join(models))
    print(f"{'artifact':12s} {'model':>5s} {'frame':>8s} {'off':>8s} {'browser':>8s} {'hammer':>8s}  "
          f"{'browser/off':>11s} {'(rounds: min..max)':>18s} {'hammer/off':>10s}")
    for r in rows:
        m, per = r["median_of_rounds_ms"], r["per_round_ratio_browser"]
        print(f"{r['artifact']:12s} {r['model_px']:5d} {r['frame']:>8s} {m['off']:8.3f} {m['browser']:8.3f} "
              f"{m['hammer']:8.3f}  {r['browser_over_off']:11.3f} {min(per):8.3f}..{max(per):<8.3f} "
              f"{r['hammer_over_off']:10.3f}")
    print("(ms per frame, median of interleaved rounds; bound: browser/off <= 1.03)")


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t0:.0f} s, {machine_info()['cpu']}, {' '.join(isa_flags())})")
    sys.exit(code)
