"""Class colours: robosat's Mapbox colour names, any CSS colour name, or '#rrggbb'."""

from __future__ import annotations

from PIL import ImageColor

from robosat_effnet.errors import ConfigError

# robosat/colors.py names these Mapbox colours; datasets written for robosat use them.
MAPBOX = {
    "dark": "#404040",
    "gray": "#eeeeee",
    "light": "#f8f8f8",
    "white": "#ffffff",
    "cyan": "#3bb2d0",
    "blue": "#3887be",
    "bluedark": "#223b53",
    "denim": "#50667f",
    "navy": "#28353d",
    "navydark": "#222b30",
    "purple": "#8a8acb",
    "teal": "#41afa5",
    "green": "#56b881",
    "yellow": "#f1f075",
    "mustard": "#fbb03b",
    "orange": "#f9886c",
    "red": "#e55e5e",
    "pink": "#ed6498",
}

# Palette index used for "no data" in predicted masks (transparent in the PNG).
NODATA_INDEX = 255


def to_rgb(color: str | tuple[int, int, int] | list[int]) -> tuple[int, int, int]:
    """Resolve a colour name, '#rrggbb' string or RGB triple to an (r, g, b) tuple."""
    if isinstance(color, (tuple, list)):
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise ConfigError(f"colour {color!r} is not an RGB triple of 0..255 integers")
        return tuple(color)  # type: ignore[return-value]
    name = str(color).strip()
    if name.lower() in MAPBOX:
        name = MAPBOX[name.lower()]
    try:
        return ImageColor.getrgb(name)[:3]
    except ValueError:
        raise ConfigError(
            f"unknown colour {color!r}: use a robosat colour ({', '.join(MAPBOX)}), a CSS name or '#rrggbb'"
        ) from None


def make_palette(colors: list, nodata: bool = True) -> list[int]:
    """A flat 768-entry PIL palette: class i gets colors[i]; index 255 is black (no data)."""
    palette = [0] * 768
    for i, color in enumerate(colors):
        palette[3 * i : 3 * i + 3] = to_rgb(color)
    return palette
