"""``python -m devices.emulate build|run ...``: the arm64 userland under qemu (see devices/emulate)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from devices.emulate import arm_command, arm_env, build


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devices.emulate",
                                description="Debian bookworm arm64 userland under qemu user-mode.")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build the sysroot (reused when already built)")
    b.add_argument("--force", action="store_true", help="rebuild even when a built one exists")
    r = sub.add_parser("run", help="run the sysroot's python3 with ARGS (e.g. -m runtime.camera ...)")
    r.add_argument("args", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    try:
        sysroot = build(force=getattr(a, "force", False))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if a.cmd == "build":
        print(sysroot.root)
        return 0
    return subprocess.run(arm_command(sysroot, a.args), env=arm_env(sysroot)).returncode


if __name__ == "__main__":
    sys.exit(main())
