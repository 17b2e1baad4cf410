"""Cold start of the device program: ``python -m benchmarks.cold_start``.

Each repetition is a fresh Python process (nothing imported, nothing cached in memory; the OS
page cache is warm after the first one). Measured inside it: ``import`` (the runtime modules),
``load`` (bundle.json, sha256 check, engine import, interpreter/session creation), ``first``
(open the video source, read the first frame, prepare + inference + decision). The sum is the
figure the issue bounds (< 1 s). Also measured from outside: the whole
``python -m runtime.camera --max-frames 1`` command (interpreter start, sinks, shutdown included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import machine_info, write_result
from benchmarks.runtime_overhead import CAMERA, build_bench_bundle, synthetic_frames

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import time
t0 = time.perf_counter()
import json, sys
from runtime.bundle import Bundle
from runtime.debounce import KofN
from runtime.frame_loop import FrameLoop
from runtime.sources import open_source
from runtime.stats import RunStats
t1 = time.perf_counter()
bundle = Bundle.load(sys.argv[1])
artifact = bundle.get(sys.argv[2])
engine = bundle.open(artifact)
loop = FrameLoop(engine, bundle.contract, bundle.decider(artifact), KofN(), lambda e, f: None, RunStats())
t2 = time.perf_counter()
with open_source(sys.argv[3]) as source:
    decision = loop.process(source.read())
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_s": t3 - t2, "total_s": t3 - t0,
                  "engine": sys.modules.get("onnxruntime") and "onnxruntime" or "litert",
                  "label": decision.label}))
"""


def write_video(path: Path, n: int = 5) -> Path:
    """A short 640x480 mp4 of synthetic parts (the first frame is all that is read)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (CAMERA[1], CAMERA[0]))
    for frame in synthetic_frames(n, CAMERA):
        writer.write(frame)
    writer.release()
    return path


def fresh(cmd: list[str]) -> tuple[float, str]:
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, "PYTHONPATH": str(REPO)}  # the user's level wins
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return wall, out.stdout


def measure(bundle: Path, artifact: str, video: Path, repeats: int, tmp: Path) -> dict:
    """Phases in fresh processes, and the whole CLI command, ``repeats`` times each."""
    phases = []
    for _ in range(repeats):
        wall, out = fresh([sys.executable, "-c", CHILD, str(bundle), artifact, str(video)])
        phases.append({**json.loads(out.strip().splitlines()[-1]), "process_wall_s": wall})
    cli = []
    for i in range(repeats):
        wall, _ = fresh([sys.executable, "-m", "runtime.camera", "--bundle", str(bundle),
                         "--artifact", artifact, "--source", str(video), "--max-frames", "1",
                         "--headless", "--stats-every", "0", "--events", str(tmp / f"e{i}.jsonl"),
                         "--no-snapshots"])
        cli.append(wall)
    med = {k: statistics.median(p[k] for p in phases)
           for k in ("import_s", "load_s", "first_s", "total_s", "process_wall_s")}
    return {"artifact": artifact, "repeats": repeats, "median": med,
            "max_total_s": max(p["total_s"] for p in phases), "cli_wall_s": {"median": statistics.median(cli),
                                                                           "max": max(cli)},
            "runs": phases}


def main(argv: list[str] | None = None) -> int:
    """Run, print a table, write results/cold_start-*.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="bundles/latest", help="falls back to a built MobileNetV2 224 bundle")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    bundle = Path(args.bundle)
    if not (bundle / "bundle.json").is_file():
        print(f"note: no bundle at {bundle}; using a built MobileNetV2 1.0 224 px bundle", file=sys.stderr)
        bundle = build_bench_bundle(224, 1.0)
    meta = json.loads((bundle / "bundle.json").read_text())
    names = [a["name"] for a in meta["artifacts"] if a["name"] in ("tflite-int8", "tflite-fp32", "onnx-fp32")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "cold.mp4")
        for name in names:
            rows.append(measure(bundle, name, video, args.repeats, Path(tmp)))
    print(f"bundle: {bundle}  (fresh process per run, median of {args.repeats})")
    print(f"{'artifact':12s} {'import':>7s} {'load':>7s} {'first':>7s} {'total':>7s} {'max':>7s} "
          f"{'process':>8s} {'CLI 1 frame':>12s}")
    for r in rows:
        m = r["median"]
        print(f"{r['artifact']:12s} {m['import_s']:7.3f} {m['load_s']:7.3f} {m['first_s']:7.3f} "
              f"{m['total_s']:7.3f} {r['max_total_s']:7.3f} {m['process_wall_s']:8.3f} "
              f"{r['cli_wall_s']['median']:12.3f}")
    print("(seconds; bound: import + load + first result < 1 s)")
    path = write_result("cold_start", {"bundle": str(bundle), "bound_s": 1.0, "rows": rows}, args.out)
    print(f"wrote {path}  ({machine_info()['cpu']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
