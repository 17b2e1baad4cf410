"""Where a result came from: CPU and the ISA features that decide int8 speed, board, GPU, versions, bundle.

A latency figure without this is not comparable with anything: int8 vs fp32 flips with VNNI on x86
and with ``asimddp``/sdot on Arm, and a Pi on the ``powersave`` governor is a different machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path

from runtime.bundle import Bundle
from runtime.detect import board_profile, cpu_info, read_text
from runtime.fsutil import sha256_file
from runtime.versions import package_versions

PACKAGES = (
    "numpy",
    "opencv-python-headless",
    "ai-edge-litert",
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "tf2onnx",
    "onnx",
    "torch",
    "onnx2torch",
)


def memory_bytes(root: Path = Path("/")) -> int | None:
    """MemTotal of ``proc/meminfo`` in bytes."""
    for line in (read_text(root, "proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def governor(root: Path = Path("/")) -> str | None:
    """cpufreq scaling governor of CPU 0 (None where the kernel exposes none, e.g. most VMs)."""
    return read_text(root, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def board(root: Path = Path("/")) -> dict:
    """Board model string, the profile it maps to, the Jetson L4T release and power mode."""
    found = board_profile(root)
    out = {
        "model": read_text(root, "proc/device-tree/model"),
        "profile": found[0] if found else None,
        "l4t_release": read_text(root, "etc/nv_tegra_release"),
    }
    if shutil.which("nvpmodel"):
        out["nvpmodel"] = _run(["nvpmodel", "-q"])
    return out


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def gpus() -> list[dict]:
    """NVIDIA GPUs with driver and CUDA version as ``nvidia-smi`` reports them (empty without one)."""
    if not shutil.which("nvidia-smi"):
        return []
    text = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    header = _run(["nvidia-smi"]) or ""
    cuda = next(
        (part.split(":")[1].strip().split()[0] for part in header.split("|") if "CUDA Version" in part), None
    )
    return [
        dict(zip(("name", "driver", "memory"), (s.strip() for s in line.split(",")), strict=False), cuda=cuda)
        for line in (text or "").splitlines()
        if line.strip()
    ]


def machine_fingerprint() -> dict:
    """The machine: host, CPU model and int8-relevant ISA flags, cores, memory, governor, OS, board, GPUs."""
    model, isa = cpu_info()
    return {
        "host": socket.gethostname(),
        "cpu": model or f"{platform.machine()} CPU",
        "isa": isa,
        "cores": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "governor": governor(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(PACKAGES),
        "board": board(),
        "gpus": gpus(),
    }


def bundle_fingerprint(bundle: Bundle) -> dict:
    """The bundle: name, sha256 of ``bundle.json`` (what ``compare`` matches on) and of each artifact."""
    return {
        "path": str(bundle.root),
        "name": bundle.meta.get("name"),
        "sha256": sha256_file(bundle.root / "bundle.json"),
        "artifacts": {a.name: a.sha256 for a in bundle.artifacts},
        "input": bundle.meta.get("input"),
    }
