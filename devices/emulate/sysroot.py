"""Build (once) the arm64 sysroot: debootstrap's packages unpacked with ``dpkg -x``, wheels with pip."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devices.emulate.wheels import manylinux_platforms, pip_target_args

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("EDGEFLAG_ARM64_CACHE", REPO / ".cache" / "arm64"))
REQUIREMENTS = REPO / "devices" / "requirements" / "pi.txt"
SUITE, MIRROR = "bookworm", os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEB_PACKAGES = "python3,ca-certificates,libgomp1"  # libgomp1: ONNX Runtime's and OpenCV's OpenMP
# Beyond the Pi recipe: ONNX Runtime (so the ONNX artifacts are checked on aarch64 too) and pytest
# (the runtime's model-free tests run inside the userland). The Pi's own pins are not restated.
EXTRA_WHEELS = ("onnxruntime==1.32.0", "pytest>=8")
GLIBC = "2.36"  # bookworm's
PYTHON_VERSION = "3.11"  # bookworm's python3, as on Raspberry Pi OS Bookworm

# Bookworm's qemu-user 7.2 shows the program the host's x86 /proc/cpuinfo; the CPU-detection library
# inside LiteRT and ONNX Runtime (cpuinfo) finds no ARM core there and writes through a NULL pointer in
# a static constructor (SIGSEGV). With `qemu-aarch64 -L DIR`, the program opens DIR/proc/cpuinfo
# instead, so an ARM-format file (a Pi 4's 4x Cortex-A72) there fixes it; qemu 10 emulates the file.
CPUINFO_CORE = """processor\t: {n}
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

"""


@dataclass(frozen=True)
class Sysroot:
    """A built sysroot: ``root`` is the arm64 filesystem, ``site`` its pip --target folder."""

    root: Path

    @property
    def site(self) -> Path:
        return self.root / "opt" / "py"

    @property
    def python(self) -> Path:
        return self.root / "usr" / "bin" / "python3"


def missing_tools() -> list[str]:
    """Host programs the build and the runs need that are not installed (apt names)."""
    need = {"debootstrap": "debootstrap", "dpkg": "dpkg"}
    missing = [pkg for prog, pkg in need.items() if not shutil.which(prog)]
    if not (shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")):
        missing.append("qemu-user-static")
    return missing


def _key() -> str:
    """Cache key: what the sysroot is made of; a change to any of it rebuilds."""
    text = "\n".join([SUITE, DEB_PACKAGES, REQUIREMENTS.read_text(), *EXTRA_WHEELS, GLIBC,
                      PYTHON_VERSION, CPUINFO_CORE])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _log(msg: str) -> None:
    print(f"[arm64] {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{cmd[0]} failed (exit {result.returncode}): {' '.join(cmd)}\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")


def _debootstrap(root: Path) -> None:
    # --foreign: download and unpack only; the second stage would run arm64 code (needs binfmt).
    # dpkg -x then unpacks every downloaded .deb (the first stage leaves some unpacked only in part).
    _run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase", f"--include={DEB_PACKAGES}",
          SUITE, str(root), MIRROR])
    for deb in sorted((root / "var" / "cache" / "apt" / "archives").glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(root)])


def _write_cpuinfo(root: Path, cores: int = 4) -> None:
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc" / "cpuinfo").write_text("".join(CPUINFO_CORE.format(n=i) for i in range(cores)))


def _pip_target(site: Path) -> None:
    _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(site),
          *pip_target_args(PYTHON_VERSION, manylinux_platforms(GLIBC)), "-r", str(REQUIREMENTS),
          *EXTRA_WHEELS])


def build(cache: Path = CACHE, force: bool = False) -> Sysroot:
    """The sysroot under ``cache``, built unless one with the same key is there already."""
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"arm64 emulation needs {', '.join(missing)} (not found). "
                           f"Install: apt-get install {' '.join(missing)}")
    sysroot = Sysroot(cache / f"bookworm-{_key()}")
    stamp = sysroot.root / ".edgeflag-built"
    if stamp.is_file() and not force:
        _log(f"reusing {sysroot.root}")
        return sysroot
    tmp = sysroot.root.with_name(sysroot.root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _log(f"debootstrap {SUITE} arm64 into {tmp}")
    _debootstrap(tmp)
    _write_cpuinfo(tmp)
    _log(f"pip: aarch64 wheels of {REQUIREMENTS.relative_to(REPO)} + {', '.join(EXTRA_WHEELS)}")
    _pip_target(Sysroot(tmp).site)
    (tmp / ".edgeflag-built").write_text(_key() + "\n")
    shutil.rmtree(sysroot.root, ignore_errors=True)
    tmp.rename(sysroot.root)  # a half-built sysroot is never taken for a built one
    _log(f"built {sysroot.root}")
    return sysroot
