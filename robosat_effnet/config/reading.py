"""Reading a config file: TOML checked against a schema of tables, keys and types, and its paths."""

from __future__ import annotations

import logging
import math
import tomllib
from pathlib import Path
from typing import Any

from robosat_effnet.errors import ConfigError
from robosat_effnet.io import file_problem
from robosat_effnet.text import read_text

log = logging.getLogger("robosat_effnet")


def read_toml(path: Path, schema: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The known tables and keys of a `kind` (dataset/model) TOML file; wrong types raise, unknown keys warn."""
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"{kind} config {path} {problem}; pass --{kind} with the path of your {kind}.toml")
    try:
        data = tomllib.loads(read_text(path))  # a byte-order mark (Notepad, some editors) is no TOML error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:  # unreadable (permissions), or a folder
        raise ConfigError(f"cannot read {kind} config {path}: {e.strerror or e}; check the file and its "
                          "permissions") from None
    except RecursionError:  # arrays nested hundreds deep: no config of ours nests more than two
        raise ConfigError(f"{path} nests arrays or tables too deeply to be a config file; is it the right file?") \
            from None
    unknown = []
    result: dict[str, dict[str, Any]] = {}
    for table, content in data.items():
        if table not in schema or not isinstance(content, dict):
            unknown.append(f"[{table}]")
            continue
        result[table] = {}
        for key, value in content.items():
            expected = schema[table].get(key)
            if expected is None:
                unknown.append(f"[{table}] {key}")
            elif not is_type(value, expected):
                raise ConfigError(f"{path}: [{table}] {key} = {value!r} has the wrong type; "
                                  f"expected {type_names(expected)}")
            elif not is_finite(value):  # TOML spells them nan and inf; no setting means either
                raise ConfigError(f"{path}: [{table}] {key} = {value!r} holds a number that is not finite "
                                  "(nan or inf); give finite numbers")
            else:
                result[table][key] = value
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", path, ", ".join(unknown))
    return result


def is_type(value: Any, expected: Any) -> bool:
    """Whether a TOML value has one of the expected types (an integer passes for a number, a bool only for a bool)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):  # bool is an int subclass; only accept it where a bool is asked for
        return bool in types
    return isinstance(value, types) or (float in types and isinstance(value, int))


def type_names(expected: Any) -> str:
    """The expected types in words, for messages."""
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join({str: "a string", int: "an integer", float: "a number", bool: "true/false",
                        list: "a list"}[t] for t in types)


def is_finite(value: Any) -> bool:
    """Whether every float in a TOML value (a list's items too) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(is_finite(item) for item in value)
    return True


def is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_path(toml: Path, value: str) -> Path:
    """A path from a config file: absolute as it is; relative to the file's folder, or, when only that
    exists, to the current folder (robosat's reading of relative paths)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    beside = (toml.parent / path).resolve()
    here = path.resolve()
    return here if not beside.exists() and here.exists() else beside
