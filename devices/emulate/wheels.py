"""Which aarch64 wheels pip picks for a board's Python and glibc, without that board or that Python.

``pip install --dry-run --platform ... --python-version ...`` resolves a requirements file for another
interpreter: it reads the wheels' metadata from the index and installs nothing. It is how the Jetson
requirements are checked for JetPack 6's Python 3.10 (no 3.10 arm64 userland can be had here:
Debian bookworm ships 3.11 and Ubuntu's archive is out of reach), and how the sysroot gets its wheels.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


def manylinux_platforms(glibc: str, arch: str = "aarch64") -> list[str]:
    """Every manylinux tag a system with this glibc accepts (2.17 up to it), for pip's --platform."""
    major, minor = (int(x) for x in glibc.split("."))
    if major != 2 or minor < 17:
        raise ValueError(f"glibc {glibc}: manylinux wheels need glibc 2.17 or newer")
    return [f"manylinux2014_{arch}"] + [f"manylinux_2_{m}_{arch}" for m in range(17, minor + 1)]


def pip_target_args(python_version: str, platforms: list[str]) -> list[str]:
    """pip flags that pick binary wheels for another CPython (``3.10``) and platform."""
    abi = "cp" + python_version.replace(".", "")
    return [*(arg for p in platforms for arg in ("--platform", p)), "--python-version", python_version,
            "--implementation", "cp", "--abi", abi, "--only-binary=:all:"]


@dataclass(frozen=True)
class Resolved:
    """A wheel pip would install: name, version and its file name's tags."""

    name: str
    version: str
    wheel: str


def resolve(requirements: list[str], python_version: str, glibc: str) -> list[Resolved]:
    """What pip would install for ``requirements`` (lines or ``-r FILE``); raises with pip's output."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
               "--disable-pip-version-check", "--target", str(Path(tmp) / "t"), "--report", str(report),
               *pip_target_args(python_version, manylinux_platforms(glibc)), *requirements]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"pip could not resolve {requirements} for CPython {python_version}, "
                               f"glibc {glibc}:\n{out.stderr.strip()[-3000:]}")
        doc = json.loads(report.read_text())
    return [Resolved(i["metadata"]["name"], i["metadata"]["version"],
                     i["download_info"]["url"].rsplit("/", 1)[-1]) for i in doc["install"]]
