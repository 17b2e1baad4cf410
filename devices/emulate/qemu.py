"""Run a program of the arm64 sysroot under qemu user-mode, with this repository importable."""

from __future__ import annotations

import os
import shutil

from devices.emulate.sysroot import REPO, Sysroot

QEMU_CPU = "cortex-a72"  # the Pi 4's core: no dot-product instructions, as on the board


def qemu_binary() -> str:
    """qemu-aarch64 from qemu-user-static (or qemu-user); raises when neither is installed."""
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("qemu-aarch64 not found. Install: apt-get install qemu-user-static")


def arm_command(sysroot: Sysroot, args: list[str]) -> list[str]:
    """``python3 ARGS`` of the sysroot, under qemu (-L: the sysroot's loader, libraries, /proc/cpuinfo)."""
    return [qemu_binary(), "-L", str(sysroot.root), str(sysroot.python), *args]


def arm_env(sysroot: Sysroot, extra: dict | None = None) -> dict:
    """Environment for :func:`arm_command`: the sysroot's wheels and the repository on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(QEMU_CPU=QEMU_CPU, PYTHONPATH=f"{REPO}:{sysroot.site}", PYTHONDONTWRITEBYTECODE="1",
               PYTHONNOUSERSITE="1")
    env.update(extra or {})
    return env
