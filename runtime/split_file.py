"""The split lists of a run directory: ``splits/{train,val,test}.txt``.

One ``relative/posix/path<TAB>label`` line per image, paths relative to the dataset folder;
written by ``train``, read by ``train`` (to reuse a split), ``export`` (the gate's images) and
the demo conveyor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def read_split_file(path: str | Path, error: type[Exception],
                    labels: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """``[(relative path, label)]`` of one split file; a damaged line raises ``error``."""
    path = Path(path)
    known = list(labels) if labels is not None else None
    items = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rel, sep, label = line.partition("\t")
        if not sep or (known is not None and label not in known):
            where = f" with a label in {known}" if known is not None else ""
            raise error(f"{path}:{n}: expected 'relative/path<TAB>label'{where}, got {line!r}; "
                        "the split file is damaged, re-run training")
        items.append((rel, label))
    return items
