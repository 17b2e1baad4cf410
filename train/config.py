"""Training hyper-parameters: every default is defined here, once.

Precedence: these defaults < a config file (JSON or TOML, keys = field names, ``-`` or ``_``)
< command-line flags. The resolved config is saved as ``config.json`` in the run directory.
The command-line flags are generated from the fields below, so the help text lives here too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runtime.configfile import read_config_file
from runtime.contract import DEFAULT_INTERPOLATION, RESIZE_MODES
from runtime.contract import INTERPOLATIONS as CONTRACT_INTERPOLATIONS
from runtime.fitness import DEFAULT_MAX_FALSE_ALARM_RATE, DEFAULT_MIN_DEFECT_RECALL, LineTargets
from runtime.hints import closest
from runtime.roi import parse_roi
from train.errors import TrainError
from train.evidence import DEFAULT_MIN_EVIDENCE

BACKBONES = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")
STRATEGIES = ("default", "mirrored", "multi-worker")
INTERPOLATIONS = tuple(CONTRACT_INTERPOLATIONS)  # the contract's names, in its order
CLASS_WEIGHTS = ("line", "balanced", "oversample", "none")
POOLINGS = ("auto", "avg", "max")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


def _f(default: Any, help: str, **kw) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on. ``data`` is the only field without a usable default."""

    data: str = _f("", "dataset folder: one sub-folder of images per class")
    name: str | None = _f(None, "run name (default: <data folder>-<UTC time>)")
    out: str = _f("runs", "parent folder of run directories")
    backbone: str = _f("mobilenet_v2", "backbone architecture", choices=BACKBONES)
    alpha: float = _f(1.0, "width multiplier (V2: 0.35..1.4; V3 with imagenet: 0.75 or 1.0)")
    image_size: int = _f(224, "square model input size in px (>= 32)")
    interpolation: str = _f(DEFAULT_INTERPOLATION,
                            "resize interpolation (part of the input contract): area-bilinear (area by "
                            "whole factors, then bilinear: fast on camera frames), area (one area step), "
                            "bilinear, nearest, bicubic", choices=INTERPOLATIONS)
    resize: str = _f("letterbox", "how photos of another aspect reach the square input (part of the input "
                                "contract): stretch, letterbox (keep the aspect, pad) or crop (keep the "
                                "aspect, cut the centre)", choices=RESIZE_MODES)
    roi: str | None = _f(None, "crop every photo (and camera frame) to this region before resizing, "
                               "fractions x0,y0,x1,y1 of the image (part of the input contract)")
    weights: str = _f("auto", "auto | imagenet | none | PATH to a Keras .h5 backbone weights file")
    epochs_head: int = _f(50, "stage 1: epochs of the classifier head on cached frozen-backbone features")
    epochs_finetune: int = _f(5, "stage 2: epochs fine-tuning the top blocks (0 = skip)")
    epochs_scratch: int = _f(30, "epochs of the whole net when training from scratch (weights none)")
    finetune_blocks: int = _f(4, "number of top backbone blocks unfrozen in stage 2")
    batch_size: int = _f(32, "batch size")
    lr_head: float = _f(3e-3, "learning rate of stage 1 (head)")
    lr_finetune: float = _f(1e-4, "peak learning rate of stage 2 (fine-tuning: keep it low; warm-up "
                                  "over the first epoch, then cosine decay)")
    finetune_search: bool = _f(True, "stage 2 also tries lr_finetune / 10 from the same start and keeps the "
                                     "lower val loss (doubles stage 2's time)")
    finetune_soup: bool = _f(False, "stage 2 keeps the greedy weight average of its runs and the head's "
                                    "weights, each run added only if the average's val loss drops "
                                    "(train/soup.py; off by default: see the README)")
    finetune_evidence: float = _f(DEFAULT_MIN_EVIDENCE, "stage 2 is kept only when its val loss beats the "
                                  "head's by this many standard errors of the per-image difference (paired "
                                  "over the val images; 0 = any gain; see train/evidence.py)")
    lr_scratch: float = _f(3e-3, "initial learning rate from scratch (cosine decay over the epochs)")
    pooling: str = _f("auto", "global pooling of the backbone features: avg, max (small local defects), or "
                              "auto (both tried on the cached features, see recipe_folds)",
                      choices=POOLINGS)
    head_search: bool = _f(True, "stage 1 also tries lr_head / 3 on the cached features (seconds: the "
                                 "backbone is not run again)")
    recipe_folds: int = _f(0, "stage 1: also score its candidates on the training photos out of fold, in "
                              "this many folds grouped by photo, and choose on that plus the val split "
                              "(0 = the val loss alone; try 5 when the val split is small)")
    head_views: int = _f(2, "stage 1: augmented views of each training photo added to the cached features "
                            "(0 = the originals only; needs augment)")
    rare_class_views: int = _f(4, "stage 1: views instead, when the rarest class has fewer than 50 training "
                                  "photos (0 = always head_views)")
    dropout: float = _f(0.2, "dropout before the classifier")
    augment: bool = _f(True, "random flip/rotation/zoom/brightness while training the whole net")
    zoom: float = _f(0.1, "max random zoom while training, a fraction (0.1: a tenth in or out; 0 = none); "
                          "widen it when parts reach the camera at varying distances")
    flip: str = _f("horizontal", "random flips (vertical ones too only if the light allows)", choices=FLIPS)
    rotation: float = _f(0.0, "max random rotation, fraction of a full turn (0.5 = +-180 degrees); off by "
                              "default: under directional light a rotated part looks like another part")
    patience: int = _f(6, "early-stopping patience in epochs (best weights are restored)")
    class_weights: str = _f("line", "against imbalance: loss weights that balance the good class against all "
                            "defect types together, and the types among themselves (line); the same weight "
                            "for every class (balanced); or each class's training photos repeated up to the "
                            "largest class's count (oversample)",
                            choices=CLASS_WEIGHTS)
    imbalance_warn_ratio: float = _f(3.0, "warn when the largest class is this many times the smallest")
    val_fraction: float = _f(0.15, "share of each class in the validation split")
    test_fraction: float = _f(0.15, "share of each class in the test split")
    min_images_per_class: int = _f(6, "a class needs at least this many good images to be split")
    near_duplicate_distance: int = _f(8, "max Hamming distance between 256-bit perceptual hashes of near "
                                         "duplicates (-1 = exact duplicates only)")
    splits_from: str | None = _f(None, "reuse the split lists of this run directory (default: this run's own "
                                       "lists when it is re-run, else a fresh seeded split)")
    min_defect_recall: float = _f(DEFAULT_MIN_DEFECT_RECALL, "line target: defective parts caught (test "
                                  "split); below it the model is reported as not fit for the line")
    max_false_alarm_rate: float = _f(DEFAULT_MAX_FALSE_ALARM_RATE, "line target: good parts flagged (test "
                                     "split); above it the model is reported as not fit for the line")
    ok_label: str | None = _f(None, "the good class (default: the folder named ok/good/pass/normal/...)")
    seed: int = _f(42, "seed of the split, initial weights, shuffling and augmentation")
    deterministic: bool = _f(True, "TensorFlow's deterministic kernels: the same data, seed and machine type "
                                   "give the same model (a re-run reproduces a result)")
    threads: int = _f(0, "TensorFlow CPU threads (0 = TensorFlow's choice)")
    strategy: str = _f("default", "tf.distribute strategy: default (one device), mirrored (all local "
                                  "GPUs), multi-worker (several machines, needs TF_CONFIG)",
                       choices=STRATEGIES)
    verbose: bool = _f(True, "print per-epoch progress lines and the final summary")

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise TrainError("invalid training config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return asdict(self)

    def hash(self) -> str:
        """Short sha256 of what determines the model (everything but where it is written)."""
        d = {k: v for k, v in self.to_dict().items() if k not in {"name", "out", "verbose", "threads"}}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _problems(c: TrainConfig) -> list[str]:
    p = []
    for f in fields(c):
        choices = f.metadata.get("choices")
        if choices and getattr(c, f.name) not in choices:
            p.append(f"{f.name} must be one of {list(choices)}, got {getattr(c, f.name)!r}")
    try:
        parse_roi(c.roi)
        LineTargets(c.min_defect_recall, c.max_false_alarm_rate)
    except ValueError as exc:
        p.append(str(exc))
    if not 0 <= c.zoom <= 0.5:
        p.append(f"zoom must be from 0 to 0.5 (a fraction of the image), got {c.zoom}")
    if c.image_size < 32:
        p.append(f"image_size must be >= 32, got {c.image_size}")
    if c.alpha <= 0:
        p.append(f"alpha must be > 0, got {c.alpha}")
    if not (0 < c.val_fraction < 1 and 0 < c.test_fraction < 1 and c.val_fraction + c.test_fraction < 0.9):
        p.append(f"val_fraction and test_fraction must be in (0, 1) with a sum < 0.9, "
                 f"got {c.val_fraction} and {c.test_fraction}")
    for name in ("epochs_head", "epochs_finetune", "epochs_scratch", "finetune_blocks", "patience",
                 "head_views", "rare_class_views", "recipe_folds"):
        if getattr(c, name) < 0:
            p.append(f"{name} must be >= 0, got {getattr(c, name)}")
    if c.finetune_evidence < 0:
        p.append(f"finetune_evidence must be >= 0 (standard errors; 0 keeps any gain), "
                 f"got {c.finetune_evidence}")
    if c.batch_size < 1:
        p.append(f"batch_size must be >= 1, got {c.batch_size}")
    if c.min_images_per_class < 3:
        p.append(f"min_images_per_class must be >= 3 (one image per split), got {c.min_images_per_class}")
    return p


def _field_types() -> dict[str, type]:
    # Annotations are strings (``from __future__``); map them to the converter a file value needs.
    conv = {"str": str, "int": int, "float": float, "bool": bool, "str | None": str}
    return {f.name: conv[f.type] for f in fields(TrainConfig)}


def load_config_file(path: str | Path) -> dict:
    """Read a JSON or TOML config file into ``{field: value}``; unknown keys are an error."""
    raw = read_config_file(path, TrainError, table="train")  # a [train] table in a shared file
    values = {k.replace("-", "_"): v for k, v in raw.items()}
    known = _field_types()
    unknown = sorted(set(values) - set(known))
    if unknown:
        # Every unknown key at once (check_keys stops at the first): the file is fixed in one go.
        hints = [f"{u} (did you mean {m}?)" if (m := closest(u, known)) else u for u in unknown]
        raise TrainError(f"config file {path}: unknown keys {hints}; known keys are the TrainConfig fields")
    return values


def _check_types(values: dict) -> None:
    types = _field_types()
    for k, v in values.items():
        want = types.get(k)
        ok = want is None or isinstance(v, want) or (want is float and isinstance(v, int))
        if not ok or (want is int and isinstance(v, bool)):
            raise TrainError(f"config value {k} = {v!r} should be of type {want.__name__}")


def resolve(overrides: dict | None = None, config_file: str | Path | None = None) -> TrainConfig:
    """Defaults < ``config_file`` < ``overrides`` (e.g. the flags given on the command line)."""
    values: dict = {}
    if config_file:
        values.update(load_config_file(config_file))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    _check_types(values)
    try:
        return replace(TrainConfig(), **values) if values else TrainConfig()
    except TypeError as exc:
        raise TrainError(f"invalid training config: {exc}") from exc
