"""Decide which backbone weights a run uses, without ever starting a download by surprise.

``auto``: ImageNet when Keras already has the file in its cache, else random init + a loud
warning. ``imagenet``: the cache, else Keras's own download; offline that fails with a clear
error naming the fixes. ``none``: random init (the whole net is trained). A path: a local Keras
``.h5`` backbone file (loads at any input size).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.fsutil import sha256_file
from train.backbones import get_backbone
from train.config import TrainConfig
from train.errors import WeightsError

# Set to 1 to forbid any download attempt (air-gapped machines, tests).
OFFLINE_ENV = "EDGEFLAG_OFFLINE"


@dataclass(frozen=True)
class WeightsChoice:
    """What was asked for and what is used (recorded in run.json)."""

    requested: str
    used: str  # "imagenet" | "path" | "none"
    path: str | None
    sha256: str | None

    @property
    def keras_arg(self) -> str | None:
        """The ``weights=`` argument for ``keras.applications``."""
        return {"imagenet": "imagenet", "path": self.path, "none": None}[self.used]

    @property
    def pretrained(self) -> bool:
        return self.used != "none"

    def to_dict(self) -> dict:
        return asdict(self)


def keras_cache_dirs() -> list[Path]:
    """Where Keras looks for downloaded weights: $KERAS_HOME (or ~/.keras), then /tmp/.keras."""
    home = Path(os.environ.get("KERAS_HOME", Path("~/.keras").expanduser()))
    return [home / "models", Path("/tmp/.keras/models")]


def cached_imagenet_file(config: TrainConfig) -> Path | None:
    """The cached ImageNet file Keras would use for this backbone/alpha/size, if present."""
    name = get_backbone(config.backbone).cache_file(config.alpha, config.image_size)
    return next((d / name for d in keras_cache_dirs() if (d / name).is_file()), None)


def _fixes(config: TrainConfig) -> str:
    name = get_backbone(config.backbone).cache_file(config.alpha, config.image_size)
    return (f"fixes: pass --weights PATH to a local .h5 backbone file; or put {name} into "
            f"$KERAS_HOME/models (now {keras_cache_dirs()[0]}); or train from scratch with --weights none")


def resolve_weights(config: TrainConfig) -> WeightsChoice:
    """Turn ``config.weights`` into a :class:`WeightsChoice` (raises :class:`WeightsError`)."""
    w = config.weights
    if w == "none":
        return WeightsChoice(w, "none", None, None)
    if w in ("auto", "imagenet"):
        cached = cached_imagenet_file(config)
        if cached is not None:
            return WeightsChoice(w, "imagenet", str(cached), sha256_file(cached))
        if w == "imagenet":
            if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
                raise WeightsError(f"--weights imagenet: not in the Keras cache and {OFFLINE_ENV} is set, so "
                                   f"no download is tried; {_fixes(config)}")
            return WeightsChoice(w, "imagenet", None, None)  # Keras downloads; see load_failure()
        print("\n" + "!" * 100 + f"\nWARNING: --weights auto: no ImageNet weights for {config.backbone} "
              f"alpha {config.alpha} in the Keras cache; training FROM SCRATCH (random init).\n"
              f"Accuracy will be much lower on real photos. {_fixes(config)}\n" + "!" * 100 + "\n",
              file=sys.stderr, flush=True)
        return WeightsChoice(w, "none", None, None)
    path = Path(w).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}; expected auto, imagenet, none or the path of "
                           f"a Keras .h5 backbone weights file; {_fixes(config)}")
    return WeightsChoice(w, "path", str(path.resolve()), sha256_file(path))


def load_failure(config: TrainConfig, choice: WeightsChoice, exc: Exception) -> WeightsError:
    """Explain why building the backbone with these weights failed."""
    if choice.used == "imagenet" and choice.path is None:
        return WeightsError(f"could not download ImageNet weights for {config.backbone} (offline?): "
                            f"{str(exc).splitlines()[0][:200]}; {_fixes(config)}")
    return WeightsError(f"weights {choice.path or choice.requested} do not fit {config.backbone} "
                        f"alpha {config.alpha}: {str(exc).splitlines()[0][:300]}; use the file made for "
                        "this backbone and width (e.g. --alpha 1.0 for the *_1.0_224_no_top.h5 file), or "
                        f"{_fixes(config)}")
