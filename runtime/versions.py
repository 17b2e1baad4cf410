"""Installed package versions, recorded with every run, bundle and benchmark result."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata


def package_versions(packages: Iterable[str], *, python: bool = False) -> dict[str, str]:
    """``{package: version}`` of those installed (missing ones are left out), plus Python if asked."""
    out = {"python": platform.python_version()} if python else {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out
