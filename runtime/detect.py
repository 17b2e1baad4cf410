"""Which board is this? Names the device profile that fits the machine, and why.

Read, in order (the first that answers wins): the device tree's model (Raspberry Pi 4/5), the L4T
release file and the device tree's compatible string (Jetson Orin, Jetson Nano), ``nvidia-smi``
(a desktop with an NVIDIA GPU); else the generic CPU profile. Every path is read under ``root`` so
tests (and a look at another machine's files) can point it at a fake tree.

The CPU's instruction-set features are reported beside the choice because int8 speed follows them
(VNNI on x86, ``asimddp``/sdot on Arm; ``../shared/ECOSYSTEM.md``). They are a hint, not a verdict:
the benchmark run on the board is what should decide a precision.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# Flags that decide int8 vs fp32 speed: x86 (AVX2, AVX-512, VNNI, AMX) and Arm (dot product, i8mm).
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
_PI_MODELS = ((re.compile(r"Raspberry Pi 5|Compute Module 5"), "pi5"),
              (re.compile(r"Raspberry Pi (4|400)|Compute Module 4"), "pi4"))
# Device-tree SoC names: tegra234 = Orin (Nano, NX, AGX), tegra210 = the original Jetson Nano.
_TEGRA_SOCS = (("tegra234", "jetson-orin-nano"), ("tegra210", "jetson-nano"))
# L4T major release -> profile (R36/R35: JetPack 6/5 on Orin; R32: JetPack 4 on the Nano).
_L4T_RELEASES = {"36": "jetson-orin-nano", "35": "jetson-orin-nano", "32": "jetson-nano"}


@dataclass(frozen=True)
class Detection:
    """The profile chosen for this machine, the evidence for it and the CPU's int8-relevant features."""

    profile: str
    reasons: list[str]
    machine: str
    cpu: str
    isa: list[str] = field(default_factory=list)

    def int8_hint(self) -> str:
        """What the CPU's features say about int8 vs fp32 speed (measure on the board to be sure)."""
        arm = self.machine in ("aarch64", "arm64")
        if arm and "asimddp" in self.isa:
            return "Arm with dot-product instructions (asimddp): int8 is expected well ahead of fp32"
        if arm:
            return "Arm without dot-product instructions: int8 is still expected ahead of fp32"
        if "amx_int8" in self.isa:
            return "x86 with VNNI and AMX: int8 is expected ahead of fp32 (1.2x measured on such a Xeon)"
        if {"avx512_vnni", "avx_vnni"} & set(self.isa):
            return "x86 with VNNI: int8 is expected ahead of fp32 (2.07x measured on an AVX-512 VNNI EPYC)"
        return ("x86 without VNNI: int8 may be no faster than fp32 (0.84-0.90x measured on an AVX2 EPYC); "
                "benchmark both here")

    def text(self) -> str:
        """A few lines for a person: the profile, why, and the CPU facts."""
        lines = [f"profile: {self.profile}"] + [f"  because {r}" for r in self.reasons]
        lines += [f"cpu: {self.cpu} ({self.machine}); int8-relevant features: {' '.join(self.isa) or 'none'}",
                  f"  {self.int8_hint()}"]
        return "\n".join(lines)


def read_text(root: Path, rel: str) -> str | None:
    """A text file under ``root`` (device-tree NULs as newlines), stripped; None when unreadable."""
    try:  # device-tree strings end in (and compatible lists are split by) NUL bytes
        return (root / rel).read_bytes().replace(b"\0", b"\n").decode("utf-8", "replace").strip()
    except OSError:
        return None


def cpu_info(root: Path = Path("/")) -> tuple[str, list[str]]:
    """The CPU's model name ("" when not given) and its int8-relevant flags, from ``proc/cpuinfo``."""
    text = read_text(root, "proc/cpuinfo") or ""
    model, found = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and not model:
            model = value.strip()
        elif key in ("flags", "Features"):
            found |= set(value.split())
    return model, [f for f in INT8_FLAGS if f in found]


def board_profile(root: Path) -> tuple[str, str] | None:
    """(profile, evidence) from the device tree or the L4T release file; None on other machines."""
    model = read_text(root, "proc/device-tree/model")
    if model:
        for pattern, name in _PI_MODELS:
            if pattern.search(model):
                return name, f"the device tree's model is {model!r}"
    entries = (read_text(root, "proc/device-tree/compatible") or "").split()
    compatible = [entry.split(",")[-1] for entry in entries]
    for soc, name in _TEGRA_SOCS:  # entries are "vendor,name": nvidia,tegra234
        if soc in compatible:
            return name, f"the device tree's compatible list names {soc} ({model or 'no model string'})"
    release = read_text(root, "etc/nv_tegra_release")
    if release:
        major = re.search(r"R(\d+)", release)
        if major and major.group(1) in _L4T_RELEASES:
            return _L4T_RELEASES[major.group(1)], f"/etc/nv_tegra_release says L4T R{major.group(1)}"
    return None


def _nvidia_gpu() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()]
    return names[0] if out.returncode == 0 and names else None


def detect(root: str | Path = "/", machine: str | None = None) -> Detection:
    """The profile that fits this machine (``root`` and ``machine`` stand in for it in tests)."""
    root = Path(root)
    machine = machine or platform.machine()
    cpu, isa = cpu_info(root)
    cpu = cpu or f"{machine} CPU"  # Arm kernels often give no model name
    board = board_profile(root)
    if board:
        return Detection(board[0], [board[1]], machine, cpu, isa)
    gpu = _nvidia_gpu()
    if gpu:
        return Detection("desktop", [f"nvidia-smi lists a GPU: {gpu}"], machine, cpu, isa)
    why = f"no Raspberry Pi or Jetson device tree, no L4T release file, no NVIDIA GPU: a plain {machine} CPU"
    return Detection("generic-cpu", [why], machine, cpu, isa)
