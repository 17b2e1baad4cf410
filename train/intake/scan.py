"""Find the classes and image files of a class-per-folder dataset, and the good ("ok") class.

Layout: ``DATA/<class>/**/<image>``; class names are the sub-folder names, sorted (that order is
the label index order everywhere). Hidden files and folders (``.DS_Store``, ``.git``) are
ignored; every other file that is not an image is listed as skipped, never silently dropped.

Sets that come split (Kaggle's casting set: ``casting_data/{train,test}/{def_front,ok_front}``) are
read as such: when every top-level folder is a split name and ``train`` is one of them, the classes
are the folders one level down, and each file's split is given by its top folder (``given``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from runtime.hints import closest
from runtime.image_io import IMAGE_SUFFIXES, is_image_path
from train.errors import DataError

# The rule for the good class: a folder name whose words (split on anything not a letter or digit)
# include one of these and none of the negations; or, separators removed, one of OK_NAMES.
# "free" is defect-free in public sets' naming (Magnetic Tile's MT_Free), "qualified" in many lines'.
OK_TOKENS = frozenset({"ok", "okay", "good", "pass", "passed", "normal", "nominal", "accept", "accepted",
                       "clean", "free", "intact", "qualified", "conforming"})
NEGATIONS = frozenset({"not", "no", "non", "bad", "ng"})
OK_NAMES = frozenset({"nodefect", "nodefects", "nondefect", "nondefective", "defectfree", "nonfaulty"})

# Top-level folder names of a set that comes split, and the split each one gives.
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test", "testing": "test"}

_LAYOUT_HELP = ("expected one sub-folder per class, e.g. DATA/ok/*.jpg and DATA/defect/*.jpg "
                "(make one with: python -m train.synth --out data/synthetic)")


@dataclass
class Scan:
    """What a dataset folder holds: class labels (sorted), candidate image files, skipped files."""

    root: Path
    labels: list[str]
    files: list[tuple[str, str]]  # (posix path relative to root, label)
    skipped: list[dict] = field(default_factory=list)  # {"path", "reason"}
    ignored: list[dict] = field(default_factory=list)  # folders/files outside the class tree
    given: dict[str, str] = field(default_factory=dict)  # a set that comes split: {path: its folder's split}


def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def scan_folder(root: str | Path) -> Scan:
    """List the classes and files of ``root``; raise :class:`DataError` on an unusable layout."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder not found: {root}; {_LAYOUT_HELP}; check the --data path")
    if not root.is_dir():
        raise DataError(f"dataset path is not a folder: {root}; {_LAYOUT_HELP}")
    root = root.resolve()
    scan = Scan(root=root, labels=[], files=[])
    split_dirs = _split_folders(root)
    for top in split_dirs or [root]:
        before = len(scan.files)
        _scan_classes(root, top, scan)
        if split_dirs:
            scan.given.update((rel, SPLIT_FOLDERS[top.name.lower()]) for rel, _ in scan.files[before:])
    scan.labels = sorted(set(scan.labels))
    if len(scan.labels) < 2:
        found = scan.labels or "none"
        raise DataError(f"need at least 2 class folders with images in {root}, found {found}; {_LAYOUT_HELP}")
    return scan


def _split_folders(root: Path) -> list[Path]:
    """The split folders of a set that comes split (all top folders named so, ``train`` among them)."""
    tops = [p for p in sorted(root.iterdir()) if p.is_dir() and _visible(p, root)]
    names = [SPLIT_FOLDERS.get(p.name.lower()) for p in tops]
    if tops and all(names) and "train" in names and any(q.is_dir() for p in tops for q in p.iterdir()):
        return tops
    return []


def _scan_classes(root: Path, top: Path, scan: Scan) -> None:
    """Add the class folders under ``top`` (the root, or one split folder of a set that comes split)."""
    where = top.relative_to(root).as_posix() + "/" if top != root else ""
    loose = sorted(p.name for p in top.iterdir() if p.is_file() and is_image_path(p) and _visible(p, root))
    if loose:
        raise DataError(
            f"{len(loose)} images lie directly in {top} (e.g. {loose[:3]}), not in class folders; "
            f"{_LAYOUT_HELP}; move each image into the folder of its class")
    for sub in sorted(p for p in top.iterdir() if _visible(p, root)):
        if not sub.is_dir():
            scan.ignored.append({"path": where + sub.name,
                                 "reason": "file beside the class folders (not a class)"})
            continue
        _scan_class(root, sub, scan)


def _scan_class(root: Path, folder: Path, scan: Scan) -> None:
    files, skipped = [], []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or not _visible(p, root):
            continue
        rel = p.relative_to(root).as_posix()
        if is_image_path(p):
            files.append((rel, folder.name))
        else:
            skipped.append({"path": rel, "reason": f"not an image file (suffix {p.suffix or 'none'!r}; "
                                                   f"expected one of {sorted(IMAGE_SUFFIXES)})"})
    scan.skipped.extend(skipped)
    if files:
        scan.labels.append(folder.name)
        scan.files.extend(files)
    else:
        scan.ignored.append({"path": folder.relative_to(root).as_posix(),
                             "reason": "folder without image files (not a class)"})


def is_ok_name(label: str) -> bool:
    """The documented rule that recognises the good class by its folder name."""
    words = {w for w in re.split(r"[^a-z0-9]+", label.lower()) if w}
    if re.sub(r"[^a-z0-9]", "", label.lower()) in OK_NAMES:
        return True
    return bool(words & OK_TOKENS) and not words & NEGATIONS


# ``--ok-label none``: the set has no good class; the model sorts parts by class (every class a label).
SORTING = "none"


def _one_typo(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by one insertion, deletion, substitution or swap of neighbours."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _misnamed_good(labels: list[str]) -> list[str]:
    """Classes with a word one typo away from a good-class word of 4+ letters (``godo``, ``normall``)."""
    words = [w for w in OK_TOKENS | OK_NAMES if len(w) >= 4]
    return [lab for lab in labels
            if any(_one_typo(part, w) for part in re.split(r"[^a-z0-9]+", lab.lower()) for w in words)]


def detect_ok_label(labels: list[str], requested: str | None = None) -> str | None:
    """The good class: ``requested`` when given (must exist), else the one matching the rule.

    ``requested == "none"`` (and no class of that name): sorting, no good class (returns None).
    """
    if requested is not None:
        if requested in labels:
            return requested
        if requested.lower() == SORTING:
            return None
        close = closest(requested, labels)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise DataError(f"--ok-label {requested!r} is not one of the classes {labels}{hint}")
    matches = [lab for lab in labels if is_ok_name(lab)]
    if len(matches) == 1:
        return matches[0]
    what = "no class" if not matches else f"several classes {matches}"
    typo = _misnamed_good(labels) if not matches else []
    hint = (f" ({', '.join(repr(t) for t in typo)} looks like a misspelt good class: rename the folder or "
            f"pass --ok-label {typo[0]})" if typo else "")
    raise DataError(
        f"cannot tell which class holds the good parts: {what} of {labels} is named like "
        f"ok/good/pass/normal{hint}; name that folder so or pass --ok-label <class>, or --ok-label none "
        "when the set has no good class (sorting by class: every class a label)")
