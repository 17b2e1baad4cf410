"""Device profiles: ``devices/<board>.toml`` says how a board runs the camera program.

A profile has a ``[device]`` table (name, description, install recipe, service unit, notes) and a
``[camera]`` table holding any :class:`runtime.settings.CameraConfig` setting: which artifact,
backend, threads, execution providers, camera source and capture size suit that board. It is a
settings layer: flags given on the command line still win over it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtime.configfile import read_config_file
from runtime.settings import ConfigError, check_keys

# Profiles shipped with the project: the repository's devices/ folder.
PROFILE_DIR = Path(__file__).resolve().parents[1] / "devices"
_DEVICE_KEYS = ("name", "description", "install", "service", "notes")


@dataclass(frozen=True)
class DeviceProfile:
    """A parsed board profile; ``camera`` holds its settings layer."""

    name: str
    path: Path
    description: str = ""
    install: Path | None = None
    service: Path | None = None
    notes: str = ""
    camera: dict = field(default_factory=dict)


def list_profiles(directory: Path = PROFILE_DIR) -> list[str]:
    """Names of the shipped profiles (``pi4``, ``pi5``, ...)."""
    return sorted(p.stem for p in directory.glob("*.toml"))


def profile_path(spec: str | Path) -> Path:
    """A profile file from a path, or from a shipped profile's name (``pi5``)."""
    path = Path(spec)
    if path.is_file():
        return path
    shipped = PROFILE_DIR / f"{spec}.toml"
    if shipped.is_file():
        return shipped
    raise ConfigError(f"device profile {spec!r}: no such file. Give a path to a .toml profile or "
                      f"one of the shipped names: {', '.join(list_profiles()) or 'none found'}")


def load_profile(spec: str | Path) -> DeviceProfile:
    """Load and validate a device profile (a path or a shipped name)."""
    path = profile_path(spec)
    data = read_config_file(path, ConfigError, what="device profile")
    unknown = set(data) - {"device", "camera"}
    if unknown:
        raise ConfigError(f"device profile {path}: unknown tables {sorted(unknown)}; "
                          "expected [device] and [camera]")
    device = data.get("device", {})
    bad = set(device) - set(_DEVICE_KEYS)
    if bad:
        raise ConfigError(f"device profile {path}: unknown [device] keys {sorted(bad)}; "
                          f"expected {list(_DEVICE_KEYS)}")
    camera = check_keys(data.get("camera", {}), f"device profile {path} [camera]")

    def rel(key: str) -> Path | None:  # recipe paths are relative to the profile file
        return (path.parent / device[key]).resolve() if device.get(key) else None

    return DeviceProfile(name=device.get("name", path.stem), path=path,
                         description=device.get("description", ""), install=rel("install"),
                         service=rel("service"), notes=device.get("notes", ""), camera=camera)
