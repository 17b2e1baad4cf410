"""Installed size of the device runtime without TensorFlow: ``python -m benchmarks.footprint``.

Method: for each distribution, the files its ``RECORD`` lists, sized on disk as installed in
this environment (``importlib.metadata``), summed over the dependency closure (requirements
followed recursively, extras ignored, markers evaluated here). Byte-exact for this platform's
wheels; an aarch64 board's wheels differ by a few percent. Stacks compared:

* ``runtime + litert``: numpy, opencv-python-headless, ai-edge-litert and their dependencies;
* ``runtime + onnxruntime``: numpy, opencv-python-headless, onnxruntime and theirs;
* ``training side``: tensorflow(-cpu) + keras, what the device does *not* need.

Plus the project's own ``runtime/`` source. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

from benchmarks.harness import machine_info, write_result

STACKS = {
    "runtime + litert": ["numpy", "opencv-python-headless", "ai-edge-litert"],
    "runtime + onnxruntime": ["numpy", "opencv-python-headless", "onnxruntime"],
    "training side (not on the device)": ["tensorflow-cpu", "tensorflow", "keras"],
}
REPO = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_size(dist: metadata.Distribution) -> int:
    """Bytes on disk of every file in the distribution's RECORD."""
    total = 0
    for f in dist.files or []:
        path = Path(dist.locate_file(f))
        if path.is_file():
            total += path.stat().st_size
    return total


def requirements(dist: metadata.Distribution) -> list[str]:
    """Names of the runtime requirements that apply here (no extras)."""
    from packaging.requirements import Requirement

    out = []
    for spec in dist.requires or []:
        req = Requirement(spec)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(req.name)
    return out


def closure(roots: list[str]) -> dict[str, int]:
    """``{distribution: bytes}`` for the roots installed here and everything they require."""
    seen: dict[str, int] = {}
    todo = list(roots)
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. tensorflow when tensorflow-cpu is what is installed
        seen[name] = dist_size(dist)
        todo.extend(requirements(dist))
    return seen


def source_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.py"))


def main(argv: list[str] | None = None) -> int:
    """Print the table and write results/footprint-*.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.footprint", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="results")
    args = p.parse_args(argv)
    stacks = {name: closure(roots) for name, roots in STACKS.items()}
    print(f"{'stack':36s} {'MB':>9s}  distributions (MB)")
    for name, dists in stacks.items():
        detail = ", ".join(f"{d} {b / 1e6:.1f}" for d, b in sorted(dists.items(), key=lambda kv: -kv[1]))
        print(f"{name:36s} {sum(dists.values()) / 1e6:9.1f}  {detail}")
    ours = source_size(REPO / "runtime")
    print(f"{'project runtime/ source (.py)':36s} {ours / 1e6:9.2f}")
    summary = {n: {"total_mb": sum(d.values()) / 1e6, "distributions_mb": {k: v / 1e6 for k, v in d.items()}}
               for n, d in stacks.items()}
    payload = {"unit": "MB (1e6 bytes)", "stacks": summary, "runtime_source_mb": ours / 1e6}
    path = write_result("footprint", payload, args.out)
    print(f"wrote {path}  ({machine_info()['machine']}, Python {machine_info()['python']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
