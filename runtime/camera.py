"""``python -m runtime.camera``: watch a camera (or a video, stream, folder) and flag defective parts.

Thin entry point: parse the flags, merge them over the device profile and config file, call
:func:`runtime.session.run_config`. Imports only numpy, OpenCV and one inference engine (never
TensorFlow), so it starts fast on a Raspberry Pi or a Jetson.
"""

from __future__ import annotations

import argparse
import sys

from runtime.artifact_kinds import FORMAT_SUFFIXES, PRECISIONS
from runtime.errors import EdgeFlagError
from runtime.settings import CameraConfig, ConfigError, read_config_file, resolve

D = CameraConfig()
EXAMPLES = """examples:
  python -m runtime.camera --bundle bundles/latest --source 0                 # USB camera, V4L2
  python -m runtime.camera --profile pi5 --bundle /opt/edgeflag/bundle        # board defaults
  python -m runtime.camera --profile auto --bundle /opt/edgeflag/bundle       # the detected board
  python -m runtime.camera --source line3.mp4 --headless --max-frames 500     # replay a video
  python -m runtime.camera --source 'parts/*.png' --sink stdout --k 1 --n 1   # one event per part
  python -m runtime.camera --source rtsp://cam/stream --sink webhook:http://plc:8080/reject
  python -m runtime.camera --parts presence --reject gpio:17:150 --reject-delay 800  # a part per verdict
  python -m runtime.camera --parts trigger:gpio:27 --part-frames 3 --reject gpio:17   # photo-eye on GPIO27
  python -m runtime.camera --parts trigger:gpio:27 --reject gpio:17 --reject-delay encoder:22:400  # encoder

sources: camera index or /dev/videoN, video file, rtsp:// http(s):// streams, a GStreamer pipeline
(contains ' ! '), csi://N (Jetson CSI camera), picamera2 (Pi), an image folder or glob.
sinks: jsonl:PATH, snapshots:DIR, stdout, webhook:URL, mqtt://host[:port]/topic, gpio:PIN[:pulse_ms].
exit status: 0 after a clean stop (end of stream, limit, SIGINT/SIGTERM), 2 on a usage or setup error."""


def _threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        t = float(value)
    except ValueError:
        t = -1.0
    if not sep or not name or not 0.0 < t <= 1.0:
        raise argparse.ArgumentTypeError(f"expected CLASS=VALUE with 0 < VALUE <= 1 (e.g. defect=0.7), "
                                         f"got {text!r}")
    return name, t


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; every default shown comes from :class:`CameraConfig`."""
    p = argparse.ArgumentParser(prog="python -m runtime.camera",
                                description="Watch a camera (or a video, stream, folder) and flag "
                                            "defective parts with a model bundle.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=argparse.SUPPRESS)  # only given flags override
    g = p.add_argument_group("model")
    g.add_argument("--bundle", help=f"bundle folder from `python -m export` (default {D.bundle})")
    g.add_argument("--profile", help="device profile: devices/<board>.toml, a name (pi4, pi5, ...) or auto "
                   "(the one `python -m devices detect` names for this machine)")
    g.add_argument("--config", help="settings file (JSON or TOML, CameraConfig field names)")
    g.add_argument("--artifact", help="exact artifact name, e.g. tflite-int8")
    g.add_argument("--precision", choices=PRECISIONS)
    g.add_argument("--format", choices=list(FORMAT_SUFFIXES))
    g.add_argument("--backend", choices=["auto", "litert", "onnxruntime"], help=f"(default {D.backend})")
    g.add_argument("--threads", type=int, help="inference threads (default: the core count)")
    g.add_argument("--providers", type=lambda s: [x for x in s.split(",") if x],
                   help="onnxruntime providers in priority order, e.g. tensorrt,cuda,cpu")
    g.add_argument("--allow-rejected", action="store_true", help="allow a gate-rejected artifact")
    g.add_argument("--allow-unfit", action="store_true",
                   help="run a bundle whose model export judged below the line targets (report.md)")
    g.add_argument("--threshold", dest="thresholds", type=_threshold, action="append",
                   metavar="CLASS=VALUE", help="override a defect class's threshold (repeatable)")
    g.add_argument("--k", type=int, help=f"flagged frames needed among the last n (default {D.k})")
    g.add_argument("--n", type=int, help=f"debouncing window in frames (default {D.n})")
    g = p.add_argument_group("line mode (one verdict per part)")
    g.add_argument("--parts", metavar="MODE",
                   help="how a part is delimited: frames (continuous material, k-of-n windows; the default), "
                        "pitch:N (every N frames), presence (seen entering and leaving the ROI), "
                        "trigger:gpio:PIN[:low] | trigger:udp:[HOST:]PORT | trigger:stdin "
                        "(a photo-eye or a PLC)")
    g.add_argument("--part-k", type=int, metavar="K",
                   help=f"a part is defective when K of its frames are flagged (default {D.part_k})")
    g.add_argument("--part-frames", type=int, metavar="N",
                   help=f"trigger mode: frames per part after its trigger (default {D.part_frames})")
    g.add_argument("--reject", metavar="gpio:PIN[:pulse_ms]",
                   help="reject output: one pulse per defective part, after --reject-delay")
    g.add_argument("--reject-delay", metavar="MS|encoder:PIN:COUNT[:low]",
                   help="from the part's trigger (or first frame) to its reject pulse: MS milliseconds "
                        f"(camera-to-gate distance / belt speed; default {D.reject_delay:g}), or COUNT "
                        "pulses of a belt encoder on GPIO PIN (camera-to-gate distance x pulses per mm: "
                        "follows a belt that slows or stops; low = active-low, with the pull-up)")
    g.add_argument("--counters", metavar="FILE",
                   help="production counters kept across restarts (default: <events>.counters.json; "
                        "none = off)")
    g = p.add_argument_group("source")
    g.add_argument("--source", help=f"what to watch (default {D.source!r}: the first camera)")
    g.add_argument("--realtime", action="store_true", help="pace files/folders at their frame rate")
    g.add_argument("--width", type=int, help="capture width asked of a camera")
    g.add_argument("--height", type=int, help="capture height asked of a camera")
    g.add_argument("--fps", type=float, help="capture rate asked of a camera / replay rate")
    resize = g.add_mutually_exclusive_group()
    resize.add_argument("--camera-resize", dest="camera_resize", action="store_true",
                        help="the camera's hardware crops the ROI and scales frames to the model's input "
                             "(picamera2: Pi ISP, csi://N: Jetson VIC); the CPU does not resize")
    resize.add_argument("--no-camera-resize", dest="camera_resize", action="store_false",
                        help="resize on the CPU (needed to use a USB camera with a profile that sets "
                             "camera_resize)")
    g.add_argument("--roi", metavar="X0,Y0,X1,Y1",
                   help="where the part sits in the view, fractions of the frame (overrides the bundle's; "
                        "'full' = whole frame), e.g. 0.25,0,0.75,1")
    g.add_argument("--no-reconnect", dest="reconnect", action="store_false",
                   help="end the run when a live source is lost instead of reopening it")
    g = p.add_argument_group("outputs")
    g.add_argument("--events", help=f"append-only JSONL event log (default {D.events})")
    g.add_argument("--snapshots", help=f"folder for JPEGs of flagged parts (default {D.snapshots})")
    g.add_argument("--no-snapshots", dest="snapshots", action="store_const", const="")
    g.add_argument("--snapshots-keep", type=int, metavar="N",
                   help=f"keep the newest N snapshots, delete older ones; 0 = keep all "
                        f"(default {D.snapshots_keep})")
    g.add_argument("--sink", dest="sinks", action="append", metavar="SPEC",
                   help="extra event sink (repeatable): stdout, webhook:URL, mqtt://host/topic, gpio:PIN")
    g.add_argument("--queue-size", type=int,
                   help=f"per-sink queue; full = drop, counted (default {D.queue_size})")
    g.add_argument("--drain-timeout", type=float,
                   help="seconds the sinks get at shutdown to deliver queued events "
                        f"(default {D.drain_timeout:g})")
    g = p.add_argument_group("operation")
    show = g.add_mutually_exclusive_group()
    show.add_argument("--show", dest="show", action="store_true", help="window with overlay")
    show.add_argument("--headless", dest="show", action="store_false",
                      help="no window (the default when there is no display)")
    g.add_argument("--http", metavar="[HOST:]PORT",
                   help="serve a read-only status page, /metrics and /healthz (loopback unless a host is "
                        "given: 0.0.0.0:8080 to reach it from the line's network)")
    g.add_argument("--health-stall", type=float, metavar="S",
                   help=f"/healthz fails after S seconds without a frame (default {D.health_stall:g})")
    g.add_argument("--health-backlog", type=float, metavar="S",
                   help="/healthz fails when a remote sink's oldest undelivered event is older than S "
                        f"seconds (default {D.health_backlog:g})")
    g.add_argument("--stats-every", type=float,
                   help=f"seconds between stats lines, 0 = off (default {D.stats_every:g})")
    g.add_argument("--max-frames", type=int, help="stop after this many frames")
    g.add_argument("--duration", type=float, help="stop after this many seconds")
    g.add_argument("--list-profiles", action="store_true", help="print the shipped device profiles and exit")
    return p


def resolve_args(args: dict) -> tuple[CameraConfig, str | None]:
    """Layers: defaults < device profile < config file < flags. Returns (config, profile name)."""
    from runtime.profile import load_profile

    spec = args.pop("profile", None)
    if spec == "auto":
        spec = _detected_profile()
    profile = load_profile(spec) if spec else None
    config_file = read_config_file(args.pop("config")) if "config" in args else {}
    if "thresholds" in args:
        args["thresholds"] = dict(args["thresholds"])
    config = resolve(profile.camera if profile else {}, config_file, args)
    return config, (str(profile.path) if profile else None)


def _detected_profile() -> str:
    from runtime.detect import detect

    found = detect()
    print(f"profile auto: {found.profile}, because {'; '.join(found.reasons)}", file=sys.stderr)
    return found.profile


def _print_profiles() -> None:
    from runtime.profile import PROFILE_DIR, list_profiles, load_profile

    for name in list_profiles():
        prof = load_profile(name)
        print(f"{name:18s} {prof.description}  [{PROFILE_DIR / (name + '.toml')}]")


def main(argv: list[str] | None = None) -> int:
    """Run the camera program; returns the exit status."""
    args = vars(build_parser().parse_args(argv))
    try:
        if args.pop("list_profiles", False):
            _print_profiles()
            return 0
        from runtime.session import run_config

        config, profile = resolve_args(args)
        summary = run_config(config, profile=profile)
    except (EdgeFlagError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        print("interrupted during shutdown; the event log holds every event written so far",
              file=sys.stderr)
        return 130
    print(summary.text(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
