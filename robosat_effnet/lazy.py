"""Packages whose public names load on first use (PEP 562): importing the package imports nothing heavy.

    __getattr__, __dir__ = lazy_names(globals(), {"build_model": "robosat_effnet.models"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(namespace: dict[str, Any], table: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """A package's `__getattr__` and `__dir__` for `table` {public name: the module that defines it}."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value  # the next lookup is an ordinary attribute
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
