"""A camera session: open the bundle, the source and the sinks, drive the frame loop, summarize.

The per-frame work is :class:`runtime.frame_loop.FrameLoop`; the loop that feeds it frames until
a stop condition is :func:`runtime.driver.drive`.

Python use (the same names as the command-line flags)::

    from runtime.session import run
    summary = run("bundles/latest", "line3.mp4", k=3, n=5, events="events/line3.jsonl")
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from runtime.bundle import Artifact, Bundle
from runtime.contract import InputContract
from runtime.debounce import KofN
from runtime.driver import RunSummary, Stopper, drive, handle_signals, summarize
from runtime.errors import BundleError
from runtime.fitness import describe
from runtime.frame_loop import FrameLoop, now_iso
from runtime.fsutil import atomic_write_json
from runtime.roi import parse_roi
from runtime.settings import CameraConfig
from runtime.sources.camera_resize import CameraResize, supports
from runtime.stats import RunStats


def open_line_mode(config: CameraConfig, contract: InputContract, stack: ExitStack,
                   log: Callable[[str], None]):
    """(part tracker or the k-of-n debouncer, reject scheduler or None, counters or None)."""
    from runtime.counters import ProductionCounters
    from runtime.parts import make_tracker

    tracker = make_tracker(config.parts, config.part_k, contract.roi, part_frames=config.part_frames)
    if tracker is None:
        return KofN(config.k, config.n), None, None
    stack.callback(tracker.close)
    reject = None
    if config.reject:
        from runtime.reject import open_reject

        reject = open_reject(config.reject, config.reject_delay)
        stack.callback(close_reject, reject, log)
    counters = ProductionCounters(config.counters_path, log=log, journal=config.events)
    stack.callback(counters.close)  # the final state written once the loop has stopped
    if counters.restored:  # part ids go on from where the last run stopped
        tracker.next_id = counters.last_part_id + 1
        replayed = f" (+{counters.replayed} parts from {config.events})" if counters.replayed else ""
        log(f"[start] counters restored from {config.counters_path}{replayed}: {counters.line()}")
    return tracker, reject, counters


def close_reject(reject, log: Callable[[str], None]) -> None:
    """Fire what the reject output still owes, then log its counts (late, overlapped, unfired ...)."""
    reject.close()
    log(f"[stop] reject {reject.name}: {reject.summary()}")


def choose_artifact(bundle: Bundle, config: CameraConfig) -> Artifact:
    """The artifact named by ``config.artifact``, else the best match of precision/format."""
    if config.artifact:
        artifact = bundle.get(config.artifact)
        if not (artifact.passed or config.allow_rejected):
            raise BundleError(f"artifact {artifact.name!r} in {bundle.root} was {artifact.gate_status} "
                              "by the accuracy gate (see report.md in the bundle). Fix: choose another "
                              "artifact, or pass --allow-rejected to run it anyway")
        return artifact
    return bundle.select(precision=config.precision, fmt=config.format,
                         allow_rejected=config.allow_rejected, backend=config.backend)


def check_fitness(bundle: Bundle, config: CameraConfig, log: Callable[[str], None]) -> None:
    """Refuse a bundle whose reference model export judged unfit for the line, unless allowed."""
    fitness = bundle.meta.get("fitness")
    if fitness and fitness.get("fit") is False:
        if not config.allow_unfit:
            raise BundleError(f"bundle {bundle.root}: {describe(fitness)}. The model itself misses the line "
                              "targets (see report.md in the bundle). Fix: retrain with more photos of the "
                              "missed classes, or pass --allow-unfit to run it anyway (e.g. to collect "
                              "photos)")
        log(f"[start] warning: {describe(fitness)}; running anyway (--allow-unfit)")


def run(bundle: str | Path | Bundle = "bundles/latest", source="0", *,
        stop: threading.Event | None = None, log: Callable[[str], None] | None = None,
        **settings) -> RunSummary:
    """Run the camera program until the source ends or a limit/signal stops it.

    ``bundle`` is a folder or a loaded :class:`Bundle`; ``source`` a source spec (see
    ``--help``) or an open :class:`runtime.sources.FrameSource`; ``settings`` are the
    :class:`CameraConfig` fields. Setting ``stop`` ends the run cleanly from another thread.
    """
    config = CameraConfig(bundle=str(bundle.root if isinstance(bundle, Bundle) else bundle),
                          source=str(source if isinstance(source, str | int) else type(source).__name__),
                          **settings)
    return run_config(config, bundle=bundle if isinstance(bundle, Bundle) else None,
                      source=None if isinstance(source, str | int) else source, stop=stop, log=log)


def open_sinks(config: CameraConfig, board=None):
    """The event log, the snapshot folder and the extra ``--sink`` specs behind one dispatcher.

    Remote receivers (webhook, MQTT) follow the event log with a durable cursor instead of taking
    events from a queue, so an outage of the receiver, or a restart of the runtime, loses nothing.
    """
    from runtime.sinks import SinkDispatcher, make_sink
    from runtime.sinks.follower import LogFollower
    from runtime.sinks.snapshots import SnapshotSink

    sinks = [make_sink(f"jsonl:{config.events}")]
    if config.snapshots:
        sinks.append(SnapshotSink(config.snapshots, keep=config.snapshots_keep))
    extra = [make_sink(s, snapshots_keep=config.snapshots_keep) for s in config.sinks]
    followers = [LogFollower(s, config.events) for s in extra if s.remote]
    local = [s for s in extra if not s.remote]
    if board is not None:  # the status page's recent defects, fed like any local sink
        from runtime.status.board import StatusSink

        local.append(StatusSink(board))
    return SinkDispatcher(sinks + local, queue_size=config.queue_size,
                          followers=followers)


def open_status(config: CameraConfig, stack: ExitStack, log: Callable[[str], None]):
    """The status board behind ``--http`` (its server closed with ``stack``), or None when off."""
    if not config.http:
        return None
    from runtime.status.board import HealthLimits, StatusBoard
    from runtime.status.server import StatusServer, parse_listen

    board = StatusBoard(HealthLimits(stall_s=config.health_stall, backlog_s=config.health_backlog))
    server = stack.enter_context(StatusServer(board, *parse_listen(config.http)))
    log(f"[start] status page {server.url} (/metrics, /healthz)")
    return board


def snapshot_paths(folder: str | None) -> Callable[[dict], str] | None:
    """Event -> snapshot file path (the snapshot sink writes the same name), or None."""
    if not folder:
        return None
    from runtime.sinks.snapshots import snapshot_name

    return lambda event: str(Path(folder) / snapshot_name(event))


def capture_geometry(contract: InputContract, camera_resize: bool, roi: str | list | None = None,
                     log: Callable[[str], None] | None = None) -> tuple[InputContract, CameraResize | None]:
    """The contract the loop applies, and what to ask of the camera's hardware (``--camera-resize``).

    ``roi`` (the ``--roi`` setting) replaces the bundle's ROI: where the part sits depends on how the
    camera is mounted, not on the model. With camera-side resizing the frames arrive already cropped
    to the ROI and at the model's size, so the loop must not crop again: its contract drops the ROI
    and its resize is a no-op. A model whose contract keeps the aspect falls back to the CPU resize
    (said through ``log``): the profiles that turn camera-side resizing on must still run it.
    """
    if roi is not None:
        contract = replace(contract, roi=parse_roi(roi))
    if camera_resize and (reason := supports(contract)):
        if log:
            log(f"[start] {reason}")
        camera_resize = False
    if not camera_resize:
        return contract, None
    return replace(contract, roi=None), CameraResize.for_contract(contract)


def _decision_mode(config: CameraConfig) -> str:
    if config.parts == "frames":
        return f"k={config.k} of n={config.n}"
    from runtime.reject import describe_delay

    reject = f", reject {config.reject} after {describe_delay(config.reject_delay)}" if config.reject else ""
    return f"parts {config.parts} (defective at {config.part_k} flagged frames){reject}"


def run_config(config: CameraConfig, *, bundle: Bundle | None = None, source=None,
               stop: threading.Event | None = None, log: Callable[[str], None] | None = None,
               profile: str | None = None) -> RunSummary:
    """:func:`run` with settings already resolved (what ``python -m runtime.camera`` calls)."""
    from runtime.sources import open_source

    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    bundle = bundle or Bundle.load(config.bundle)
    check_fitness(bundle, config, log)
    artifact = choose_artifact(bundle, config)
    decider = bundle.decider(artifact, config.thresholds)
    options = {"providers": config.providers} if config.providers else {}
    contract, resize = capture_geometry(bundle.contract, config.camera_resize, config.roi, log)
    if source is None:  # built, not opened, before the model loads: a bad --source fails at once
        source = open_source(config.source, realtime=config.realtime, width=config.width,
                             height=config.height, fps=config.fps, reconnect=config.reconnect,
                             camera_resize=resize)
    stopper = Stopper()
    with ExitStack() as stack:
        # Exit order matters: the source stops first, then the sinks drain and flush, and the
        # signal handlers (entered first) stay in place until the very end, so a SIGTERM while
        # loading stops before the first frame and a second one cuts a long drain short.
        stack.enter_context(handle_signals(stopper))
        engine = stack.enter_context(bundle.open(artifact, backend=config.backend,
                                                 threads=config.threads, **options))
        board = open_status(config, stack, log)
        dispatcher = open_sinks(config, board)
        stack.callback(dispatcher.close, config.drain_timeout)
        # After the sinks (closed before them): the reject output fires what is still due and the
        # trigger input stops before the last events drain.
        tracker, reject, counters = open_line_mode(config, contract, stack, log)
        stack.enter_context(source)
        described = engine.describe()
        config.save(Path(config.events).with_suffix(".config.json"),
                    {"artifact_used": artifact.name, "artifact_sha256": artifact.sha256,
                     "engine": described, "profile": profile, "started": now_iso()})
        loop = FrameLoop(engine, contract, decider, tracker, dispatcher.emit,
                         RunStats(counters=counters),
                         context={"source": config.source, "artifact": artifact.name},
                         snapshot_path=snapshot_paths(config.snapshots), reject=reject)
        if board is not None:
            board.attach(loop, source, dispatcher, {"artifact": artifact.name, "bundle": config.bundle,
                                                    "backend": described.get("backend")})
        log(f"[start] {artifact.name} on {described.get('backend')} ({described.get('threads')} threads), "
            f"source {config.source}{' (camera-side resize)' if resize else ''}, "
            f"{_decision_mode(config)}, events -> {config.events}")
        reason = drive(loop, source, dispatcher, config, stopper=stopper, stop=stop, log=log, board=board)
    summary = summarize(loop, source, dispatcher, reason, artifact.name, described)
    atomic_write_json(Path(config.events).with_suffix(".summary.json"), summary.to_dict())
    return summary
