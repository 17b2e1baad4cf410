"""``python -m benchmarks run|compare|scenario``: the latency harness (README, "Benchmarks")."""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.scenarios import SCENARIOS

MODES = ("latency", "pipeline", "sustained")


def _list(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def run_parser(sub) -> None:
    p = sub.add_parser("run", help="measure a bundle's artifacts on this machine")
    p.add_argument("--bundle", default="bundles/latest")
    p.add_argument("--mode", choices=MODES, default="latency")
    p.add_argument("--artifacts", help="comma list (default: every gate-passed artifact)")
    p.add_argument(
        "--backends",
        help="comma list of backend kinds (default: every one that runs here, "
        "plus the keras / bare-invoke / runtime-frame baselines); see benchmarks/engines.py",
    )
    p.add_argument(
        "--no-baselines", action="store_true", help="leave out keras, litert-invoke and runtime-frame"
    )
    p.add_argument(
        "--threads", help="comma list of thread counts (default: the profile's, else the core count)"
    )
    p.add_argument("--profile", help="device profile (pi4, jetson-orin-nano, ...; 'auto' detects the board)")
    p.add_argument("--min-queries", type=int, default=None, help="per case (default 1024; --quick 48)")
    p.add_argument("--min-seconds", type=float, default=None, help="per case (default 60; --quick 0.4)")
    p.add_argument(
        "--quick", action="store_true", help="short protocol for tests and CI (figures are noisier)"
    )
    p.add_argument(
        "--no-cold-probe", action="store_true", help="skip the fresh-process load/RSS probe per case"
    )
    p.add_argument("--cuda-graphs", action="store_true", help="torch-cuda: replay a captured CUDA graph")
    p.add_argument("--video", help="pipeline mode: video file (default: a rendered 640x480 belt)")
    p.add_argument("--fps", type=float, help="pipeline mode: pace the video like a camera at this rate")
    p.add_argument("--minutes", type=float, default=10.0, help="sustained mode: run length")
    p.add_argument("--window", type=float, default=10.0, help="sustained mode: seconds per window")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed of the interleaved rounds")
    p.add_argument("--out", default="results")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser(sub)
    c = sub.add_parser("compare", help="Markdown + HTML report of result files against a baseline")
    c.add_argument("results", nargs="+")
    c.add_argument("--baseline", required=True)
    c.add_argument("--out", help="report path stem: writes STEM.md and STEM.html")
    c.add_argument("--allow-different-bundles", action="store_true")
    c.add_argument("--fail-if-slower", type=float, metavar="PCT")
    s = sub.add_parser("scenario", help="a named study: " + ", ".join(SCENARIOS))
    s.add_argument("name", choices=sorted(SCENARIOS))
    s.add_argument("args", nargs=argparse.REMAINDER, help="passed to the scenario")
    args = parser.parse_args(argv)
    if args.command == "scenario":
        return SCENARIOS[args.name](args.args)
    from benchmarks.commands import compare_command, run_command

    return run_command(args) if args.command == "run" else compare_command(args)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
