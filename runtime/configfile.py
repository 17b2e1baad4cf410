"""Reading a settings file (TOML or JSON) and refusing names it does not know, for every stage.

Each stage keeps its own error class (``ConfigError``, ``OptionError``, ``TrainError``): the
caller passes it in, so its entry point still reports the error the way it always did.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from runtime.hints import did_you_mean

try:
    import tomllib  # novm: the except branch below is the 3.10 path
except ModuleNotFoundError:  # Python 3.10 (JetPack 6 on Jetson): pip install tomli
    import tomli as tomllib


def read_config_file(path: str | Path, error: type[Exception], *, what: str = "config file",
                     table: str | None = None) -> dict:
    """Parse ``path`` (``.json`` as JSON, anything else as TOML) into a dict.

    ``table``: when the file has a table of that name (``[camera]``, ``[train]``), only it is
    returned, so one file can hold the settings of several stages.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path}: cannot read it (not found); pass an existing .toml or .json file")
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        text = path.read_text()
    except OSError as exc:
        raise error(f"{what} {path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{what} {path}: not valid {kind} ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected a table of settings, found {type(data).__name__}")
    return data.get(table, data) if table else data


def check_keys(values: dict, known: Iterable[str], origin: str, error: type[Exception]) -> dict:
    """Refuse the first name not in ``known``, suggesting the closest; return ``values``."""
    known = list(known)
    for key in values:
        if key not in known:
            raise error(f"{origin}: unknown setting {key!r}.{did_you_mean(key, known)} "
                        f"Known settings: {', '.join(known)}")
    return values
