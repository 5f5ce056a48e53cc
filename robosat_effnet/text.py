"""Text that people type, or save from a spreadsheet or an editor: numbers and files as they really come.

Numbers are ASCII digits only. `str.isdigit()` and `int()` take far more than '0'..'9': '²'.isdigit() is True
but int('²') fails (a traceback), while int('١٢') (Arabic-Indic), int('１２') (fullwidth), int(' 12'), int('+12')
and int('1_2') all succeed, so a stray file `².png` crashed a command and `１/２/３.png` was read as tile 1/2/3.
`ascii_int` takes '0'..'9' and nothing else; everything else is no number (a name to skip, or a cell to refuse).

Files saved by Excel ("CSV UTF-8"), Notepad and some editors start with a UTF-8 byte-order mark (U+FEFF), which
glues itself to the first cell, key or brace; `TEXT_ENCODING` (utf-8-sig) drops it and reads plain UTF-8 alike.

A source is a URL (`is_url`) when it starts with http:// or https://; anything else is a path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

TEXT_ENCODING = "utf-8-sig"  # UTF-8, with or without a byte-order mark
MAX_DIGITS = 30  # significant digits of a number read; beyond every bound checked here, far below int()'s limit
HUGE = 10**MAX_DIGITS  # what a longer number reads as (int() refuses strings of more than 4300 digits)
_DIGITS = re.compile("[0-9]+")


def ascii_int(text: str, signed: bool = False) -> int | None:
    """The non-negative integer that `text` spells in ASCII digits (nothing else: no sign, space, '_', or other
    script's digits), or None. A number of more than MAX_DIGITS significant digits reads as HUGE (-HUGE).

    `signed`: a leading '-' is taken too (a negative number is a number, to be refused by its bounds).
    """
    if signed and text.startswith("-"):
        number = ascii_int(text[1:])
        return None if number is None else -number
    if _DIGITS.fullmatch(text) is None:
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= MAX_DIGITS else HUGE


def is_ascii_int(text: str) -> bool:
    """Whether `text` is ASCII digits only (see `ascii_int`)."""
    return _DIGITS.fullmatch(text) is not None


def shown(number: int) -> str:
    """A number for a message: HUGE (a number too long to read) is not printed as 1 and 30 zeros."""
    return f"of more than {MAX_DIGITS} digits" if abs(number) >= HUGE else str(number)


def read_text(path: str | os.PathLike) -> str:
    """A text file a person may have saved (UTF-8, with or without a byte-order mark)."""
    return Path(path).read_bytes().decode(TEXT_ENCODING)


SCHEMES = ("http://", "https://")  # sources read over HTTP (robosat_effnet.data.remote), not from the disk


def is_url(source: object) -> bool:
    """Whether a command's source is an http(s) URL rather than a local path."""
    return isinstance(source, str) and source.lower().startswith(SCHEMES)
