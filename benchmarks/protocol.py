"""The measurement protocol: per case a cold probe, a warm-up until steady, then interleaved rounds.

Per case, in order:

1. **cold** (``benchmarks.probe`` in a fresh process): engine import, load, first inference, peak RSS;
2. **open** here (its own engine instance), first inference again, then warm-up until the median
   of one window of calls is within 5% of the window before (or ``warmup_max_s``);
3. **check**: top-1 on a few real bundle-contract inputs against the fp32 artifact, so a backend
   that silently ran something else (a CPU fallback, a wrong input scale) is caught;
4. **timed**: interleaved rounds, the case order shuffled each round, each case running for about
   ``chunk_s`` per round, until every case has at least ``min_queries`` queries *and*
   ``min_seconds`` of timed calls (the MLPerf Mobile single-stream rule: 1024 queries, 60 s).

Interleaving spreads background load evenly over the cases, so their ratios are what a shared,
noisy machine can say honestly; the absolute figures carry the machine fingerprint.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from benchmarks.engines import BenchEngine
from benchmarks.latency import latency_summary

MIN_AGREEMENT = 0.75  # top-1 agreement with fp32 below this: the case ran something else


@dataclass(frozen=True)
class Protocol:
    """How long and how carefully each case is timed."""

    min_queries: int = 1024
    min_seconds: float = 60.0
    # Enough for any percentile; it only binds for engines under 60 us a query (the no-op), which
    # would otherwise pile up tens of millions of samples in 60 s and add nothing but memory.
    max_queries: int = 1_000_000
    warmup_max_s: float = 5.0
    warmup_window: int = 8
    chunk_s: float = 1.0
    seed: int = 0
    cold_probe: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


QUICK = Protocol(min_queries=48, min_seconds=0.4, max_queries=20_000, warmup_max_s=0.3, warmup_window=4,
                 chunk_s=0.05)


@dataclass
class Timed:
    """One case while it is being timed."""

    case: dict
    engine: BenchEngine
    samples: list[float]
    compute: list[float]
    seconds: float = 0.0  # wall time in this case's chunks (the queries and the timer around them)

    def done(self, p: Protocol) -> bool:
        n = len(self.samples)
        return n >= p.max_queries or (n >= p.min_queries and self.seconds >= p.min_seconds)


def first_and_warmup(engine: BenchEngine, p: Protocol) -> dict:
    """First query, then warm-up until two successive windows agree within 5% (or time runs out)."""
    t0 = time.perf_counter()
    engine.step()
    first_ms = (time.perf_counter() - t0) * 1e3
    start, calls, prev = time.perf_counter(), 1, None
    steady = False
    while time.perf_counter() - start < p.warmup_max_s:
        window = []
        for _ in range(p.warmup_window):
            t = time.perf_counter()
            engine.step()
            window.append(time.perf_counter() - t)
        calls += p.warmup_window
        med = statistics.median(window)
        if prev is not None and abs(med - prev) <= 0.05 * prev:
            steady = True
            break
        prev = med
    return {
        "first_ms": first_ms,
        "warmup_calls": calls,
        "warmup_s": time.perf_counter() - start,
        "steady": steady,
    }


def top1_check(
    engine: BenchEngine, inputs: list[np.ndarray], reference: np.ndarray | None, source: str
) -> dict:
    """Top-1 agreement with the fp32 artifact on the contract inputs (``passed`` None: cannot say)."""
    if reference is None:
        return {"passed": None, "reason": "no fp32 artifact runs here to compare with"}
    probs = [engine.predict(x) for x in inputs]
    if any(p is None for p in probs):
        return {"passed": None, "reason": f"{engine.kind} computes no prediction"}
    agree = float(np.mean(np.argmax(np.stack(probs), 1) == np.argmax(reference, 1)))
    return {
        "passed": agree >= MIN_AGREEMENT,
        "agreement": agree,
        "n": len(inputs),
        "inputs": source,
        "max_abs_dprob": float(np.abs(np.stack(probs) - reference).max()),
    }


def interleave(timed: list[Timed], p: Protocol, progress: Callable[[str], None]) -> int:
    """Interleaved rounds in shuffled order until every case is done; returns the number of rounds."""
    rng = random.Random(p.seed)
    rounds, started = 0, time.perf_counter()
    while not all(t.done(p) for t in timed):
        rounds += 1
        order = timed[:]
        rng.shuffle(order)
        for t in order:
            _chunk(t, p)
        left = sum(not t.done(p) for t in timed)
        progress(
            f"round {rounds}: {len(timed) - left}/{len(timed)} cases done, "
            f"{time.perf_counter() - started:.1f} s"
        )
    return rounds


def _chunk(t: Timed, p: Protocol) -> None:
    """About ``chunk_s`` of calls of one case (at least one), each timed on its own."""
    step, samples, compute = t.engine.step, t.samples, t.compute
    estimate = statistics.median(samples[-16:]) if samples else 1e-3
    calls = min(max(1, int(p.chunk_s / max(estimate, 1e-7))), max(1, p.max_queries - len(samples)))
    began = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter()
        step()
        samples.append(time.perf_counter() - t0)
        if t.engine.compute_ms is not None:
            compute.append(t.engine.compute_ms)
    t.seconds += time.perf_counter() - began


def figures(t: Timed) -> dict:
    """The case's latency figures (ms) and, where the engine reports it, device compute apart."""
    out = {"latency_ms": latency_summary(np.asarray(t.samples) * 1e3), "timed_seconds": t.seconds}
    if t.compute:
        out["compute_ms"] = latency_summary(t.compute)
    return out


def cold_probe(case: dict, bundle: str, timeout: float = 300) -> dict:
    """Run ``benchmarks.probe`` for ``case`` in a fresh process: import, load, first inference, RSS."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.probe",
        "--bundle",
        bundle,
        "--kind",
        case["backend"],
        "--artifact",
        case["artifact"] or "",
    ]
    if case["threads"]:
        cmd += ["--threads", str(case["threads"])]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"cold probe ran past {timeout:.0f} s"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])
