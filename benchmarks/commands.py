"""The ``run`` and ``compare`` subcommands: arguments to settings, progress, files, the table."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

from benchmarks.cases import default_kinds
from benchmarks.protocol import QUICK, Protocol
from benchmarks.ratios import headline_ratios, ratios_table
from benchmarks.results import table, write
from runtime.bundle import Bundle
from runtime.errors import EdgeFlagError


def _progress(line: str) -> None:
    # One line per step on a terminal (overwritten), a log line otherwise; always stderr.
    if sys.stderr.isatty():
        print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def _profile_camera(name: str | None) -> dict:
    if not name:
        return {}
    from runtime.profile import load_profile

    if name == "auto":
        from runtime.detect import detect

        name = detect().profile
    return load_profile(name).camera


def protocol_of(args) -> Protocol:
    p = QUICK if args.quick else Protocol()
    changes = {
        k: v
        for k, v in (("min_queries", args.min_queries), ("min_seconds", args.min_seconds))
        if v is not None
    }
    return replace(p, seed=args.seed, cold_probe=not args.no_cold_probe, **changes)


def measure(
    args,
    bundle: Bundle,
    kinds: tuple[str, ...],
    threads: list[int],
    artifacts: list[str] | None,
    protocol: Protocol,
    progress,
) -> dict:
    """The result document of one ``run`` invocation."""
    if args.mode == "pipeline":
        from benchmarks.pipeline_mode import run_pipeline

        return run_pipeline(
            bundle, artifacts[0] if artifacts else None, args.video, args.fps, threads[0], protocol.to_dict()
        )
    if args.mode == "sustained":
        from benchmarks.sustained import run_sustained

        kind = kinds[0] if args.backends else None
        return run_sustained(
            bundle,
            kind,
            artifacts[0] if artifacts else None,
            threads[0],
            args.minutes,
            args.window,
            protocol.to_dict(),
            progress,
        )
    from benchmarks.runner import run_latency

    return run_latency(bundle, kinds, threads, artifacts, protocol, progress, args.cuda_graphs)


def run_command(args) -> int:
    """``python -m benchmarks run``: measure, write ``results/<host>-<UTC>.json`` (+ CSV), print the table."""
    try:
        bundle = Bundle.load(args.bundle)
        camera = _profile_camera(args.profile)
        threads = (
            [int(t) for t in args.threads.split(",")]
            if args.threads
            else [camera.get("threads") or os.cpu_count()]
        )
        kinds = tuple(args.backends.split(",")) if args.backends else default_kinds(not args.no_baselines)
        artifacts = [a for a in args.artifacts.split(",") if a] if args.artifacts else None
        if artifacts is None and args.mode != "latency" and camera.get("precision"):
            artifacts = [bundle.select(precision=camera["precision"], fmt=camera.get("format")).name]
        doc = measure(args, bundle, kinds, threads, artifacts, protocol_of(args), _progress)
        if args.mode == "latency":
            doc["ratios"] = headline_ratios(doc)
    except (EdgeFlagError, ValueError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    path = write(doc, args.out)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(table(doc))
    if doc.get("ratios"):
        print(ratios_table(doc["ratios"]))
    print(f"wrote {path} and {path.with_suffix('.csv').name}")
    failed = [
        c["id"] for c in doc["cases"] if c["status"] == "failed" or c.get("check", {}).get("passed") is False
    ]
    if failed:
        print(f"FAILED cases (see 'reason' / 'check' in the result): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def compare_command(args) -> int:
    """``python -m benchmarks compare``: Markdown to stdout, files with ``--out``, exit 1 on a regression."""
    from benchmarks.compare import CompareError, compare

    try:
        md, slower = compare(
            args.results, args.baseline, args.out, args.allow_different_bundles, args.fail_if_slower
        )
    except (CompareError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(md)
    if args.out:
        print(f"wrote {args.out}.md and {args.out}.html", file=sys.stderr)
    for line in slower:
        print(f"SLOWER: {line}", file=sys.stderr)
    return 1 if slower else 0
