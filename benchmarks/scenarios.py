"""The named studies: ``python -m benchmarks scenario NAME [ARGS]`` runs one (each has ``--help``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def _module(name: str) -> Callable[[list[str]], int]:
    return lambda argv: importlib.import_module(f"benchmarks.{name}").main(argv)


SCENARIOS: dict[str, Callable[[list[str]], int]] = {
    "int8-vs-fp32": _module("int8_vs_fp32"),
    "loop-overhead": _module("runtime_overhead"),
    "preprocess-paths": _module("preprocess_paths"),
    "cold-start": _module("cold_start"),
    "footprint": _module("footprint"),
    "head-epoch-cost": _module("head_epoch_cost"),
    "status-overhead": _module("status_overhead"),
    "presence-overhead": _module("presence_overhead"),
}
