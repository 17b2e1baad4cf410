"""The "did you mean" hint every stage adds to an error about a misspelt name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[object], cutoff: float = 0.6) -> str | None:
    """The choice spelt most like ``word``, or None when none is close enough."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[object]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices``, or an empty string."""
    match = closest(word, choices)
    return f" Did you mean {match!r}?" if match else ""
