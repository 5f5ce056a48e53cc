"""Synthetic aerial scenes of a small town, with exact building labels, for the demo and tests.

Everything is drawn in pixel space (x = column, y = row) from shapely polygons, and the very
polygons rasterised as roofs are exported as GeoJSON, so pixels and labels agree exactly.
Textures are upsampled random noise (numpy + PIL; no scipy), so a 2048 px scene takes seconds.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from PIL import Image, ImageFilter
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.io import MemoryFile
from rasterio.warp import transform
from shapely import LineString, Polygon
from shapely.geometry import mapping

from robosat_effnet.data.warp import apply_affine
from robosat_effnet.errors import ConfigError
from robosat_effnet.io import atomic_path
from robosat_effnet.outputs import claim_folder, make_record, writing
from robosat_effnet.tiles import WEB_MERCATOR

DEFAULT_CENTER = (32.5825, 0.3476)  # Kampala, Uganda: a town of corrugated-metal and tile roofs

# Roof kinds: metal, rusty metal, red tiles, brown tiles, concrete slab, painted metal.
ROOF_COLOURS = np.array([[148, 150, 152], [124, 96, 78], [160, 84, 64], [114, 80, 64], [196, 192, 182],
                         [104, 114, 124]], np.float32)
ROOF_WEIGHTS = np.array([0.28, 0.16, 0.22, 0.12, 0.14, 0.08])
FINISH = np.array([1, 1, 2, 2, 0, 1])  # 0: flat slab, 1: metal sheets (seams down the slope), 2: tiles (courses along)
LUSH, DRY, SOIL, TREE, OLIVE = np.array([[74, 96, 54], [136, 130, 90], [150, 114, 84], [38, 62, 34], [70, 84, 44]],
                                        np.float32)
ROAD_COLOURS = np.array([[0, 0, 0], [146, 116, 90], [90, 90, 93], [168, 106, 72]], np.float32)  # verge/asphalt/murram
SHADE = np.array([0.58, 0.55, 0.45], np.float32)  # light a shadow loses: blue sky still lights it
VERGE_M = 2.0  # dirt verge either side of a road, metres
# A house: roof footprint in pixels (the union of its wings), corners (wings, 4, 2) and ridge direction of each wing.
_House = tuple[Polygon, np.ndarray, np.ndarray]


def write_sample(out_dir: str | os.PathLike, seed: int = 0, size: int = 2048, crs: str = WEB_MERCATOR,
                 center: tuple[float, float] = DEFAULT_CENTER, resolution: float = 0.3,
                 buildings: int | None = None, overwrite: bool = False) -> dict[str, Path]:
    """Draw one synthetic scene and write scene.tif, mask.tif and buildings.geojson into `out_dir`.

    `size` is the width and height in pixels, `resolution` the ground metres per pixel, `center`
    the (lon, lat) of the scene centre, `crs` "EPSG:3857" or "utm" (the UTM zone of the centre).
    `buildings` caps the number of houses; None fills about 12-18% of the pixels.
    Returns {"scene", "mask", "buildings"} -> path. The same arguments give identical files.
    `out_dir` must be new, empty, or an earlier sample of the same arguments (rewritten); anything else is
    refused unless `overwrite` (somebody's scene is never replaced by a synthetic one unasked).
    """
    _check(seed, size, resolution, center, buildings)
    scene_crs, tf = scene_grid(center, size, resolution, crs)
    settings = {"seed": seed, "size": size, "crs": crs, "center": list(center), "resolution": resolution,
                "buildings": buildings}
    out = Path(out_dir)  # claimed now (also: a read-only or full disk fails now, not after drawing the town)
    claim_folder(out, make_record("sample", out, settings), overwrite=overwrite)
    rng = np.random.default_rng(seed)
    m = 1.0 / resolution  # pixels per ground metre
    roads = _roads(rng, size, m)
    houses = _houses(rng, size, m, roads, buildings)
    rgb, mask = _render(rng, size, m, roads, houses)
    paths = {"scene": out / "scene.tif", "mask": out / "mask.tif", "buildings": out / "buildings.geojson"}
    _write_atomic(paths["scene"], _tif_bytes(rgb.transpose(2, 0, 1), scene_crs, tf))
    _write_atomic(paths["mask"], _tif_bytes(mask[None], scene_crs, tf))
    _write_atomic(paths["buildings"], _geojson_bytes([h[0] for h in houses], scene_crs, tf))
    return paths


def scene_grid(center: tuple[float, float], size: int, resolution: float, crs: str) -> tuple[CRS, Affine]:
    """The CRS and affine transform of a `size`-pixel square grid centred on `center` (lon, lat)."""
    lon, lat = center
    key = str(crs).strip().lower().replace(":", "")
    if key == "utm":  # WGS 84 / UTM zone of the centre: EPSG 326zz north, 327zz south
        dst, px = CRS.from_epsg((32600 if lat >= 0 else 32700) + int((lon + 180) // 6) % 60 + 1), resolution
    elif key in ("epsg3857", "3857"):  # mercator stretches lengths by 1/cos(lat): widen pixels to keep ground metres
        dst, px = CRS.from_user_input(WEB_MERCATOR), resolution / math.cos(math.radians(lat))
    else:
        raise ConfigError(f"crs must be 'EPSG:3857' or 'utm', got {crs!r}")
    (x,), (y,) = transform(CRS.from_epsg(4326), dst, [lon], [lat])
    return dst, Affine(px, 0.0, x - size * px / 2, 0.0, -px, y + size * px / 2)


def _check(seed: int, size: int, resolution: float, center: tuple[float, float], buildings: int | None) -> None:
    """Reject arguments that would fail deep inside numpy or draw a meaningless scene."""
    def whole(v: object, low: int, high: float = math.inf) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and low <= v <= high

    lon, lat = center if np.shape(center) == (2,) else (math.nan, math.nan)
    for ok, name, value, rule in [
        (whole(seed, 0), "seed", seed, "a non-negative integer"),
        (whole(size, 64, 16384), "size", size, "an integer from 64 to 16384 pixels"),
        (isinstance(resolution, (int, float)) and 0.05 <= resolution <= 5, "resolution", resolution, "0.05-5 m/px"),
        (abs(lon) <= 180 and abs(lat) <= 80, "center", center, "(lon, lat) in degrees with |lat| <= 80"),
        (buildings is None or whole(buildings, 0), "buildings", buildings, "None or a non-negative integer"),
    ]:
        if not ok:
            raise ConfigError(f"{name} must be {rule}, got {value!r}")


def _noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Smooth noise with features about `cell` pixels across, zero mean and unit std (float32)."""
    n = max(2, round(size / max(cell, 1.0)) + 1)
    coarse = Image.fromarray(rng.standard_normal((n, n), dtype=np.float32))
    out = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.float32)
    return (out - out.mean()) / (out.std() + 1e-6)


def _blur(field: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a [0, 1] field via PIL on 8 bits: precise enough for soft edges and domes, and fast."""
    img = Image.fromarray(np.clip(field * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255


def _raster(shapes: list, size: int, dtype: type = np.uint8, all_touched: bool = False) -> np.ndarray:
    """rasterize() in pixel coordinates (identity transform); no shapes gives zeros, not an error."""
    shape = (size, size)
    return rasterize(shapes, shape, dtype=dtype, all_touched=all_touched) if shapes else np.zeros(shape, dtype)


def _roads(rng: np.random.Generator, size: int, m: float) -> list[tuple[LineString, float, int]]:
    """Two crossing paved roads, straight or gently curved, often a murram track: (centre line, half width, class)."""
    first = rng.uniform(0, np.pi)
    angles = [first, first + np.pi / 2 + rng.normal(0, 0.25)] + ([rng.uniform(0, np.pi)] if rng.random() < 0.6 else [])
    t, roads = np.linspace(-1, 1, 97)[:, None], []
    for i, a in enumerate(angles):
        mid, bend = rng.uniform(0.2, 0.8, 2) * size, rng.normal(0, 0.3 * size) if rng.random() < 0.6 else 0.0
        # A parabola (quadratic Bezier) with both ends far outside the scene, so no road ends in view.
        pts = mid + 1.6 * size * t * [np.cos(a), np.sin(a)] + bend * (1 - t**2) * [-np.sin(a), np.cos(a)]
        roads.append((LineString(pts), rng.uniform(*((3, 4.5) if i < 2 else (2, 3))) * m, 2 if i < 2 else 3))
    return roads


def _wings(rng: np.random.Generator, m: float) -> np.ndarray:
    """Corners (wings, 4, 2) of a house's roof wings in its own frame: a rectangle, or two forming an L."""
    length = rng.uniform(8, 20) * m
    width = max(6 * m, length * rng.uniform(0.45, 0.8))
    rects = [(-length / 2, -width / 2, length / 2, width / 2)]
    if rng.random() < 0.35:  # a perpendicular wing at one end makes an L
        ww, reach = width * rng.uniform(0.5, 0.8), width / 2 + rng.uniform(3, 8) * m
        sx, sy = rng.choice([-1, 1], 2)
        x0, (y0, y1) = sx * (length / 2 - ww / 2), sorted((0.0, sy * reach))
        rects.append((x0 - ww / 2, y0, x0 + ww / 2, y1))
    r = np.array(rects)
    return np.stack([r[:, [0, 2, 2, 0]], r[:, [1, 1, 3, 3]]], axis=-1)


def _houses(rng: np.random.Generator, size: int, m: float, roads: list, limit: int | None) -> list[_House]:
    """Place houses off the roads and apart, mostly aligned with the nearest road, until ~15% is built."""
    gap = 1.5 * m  # between houses, so their masks never touch
    lines = np.array([ln for ln, _, _ in roads])
    keep_out = shapely.union_all([ln.buffer(hw + (VERGE_M + 1) * m) for ln, hw, _ in roads])
    shapely.prepare(keep_out)
    target, built, houses, bounds = rng.uniform(0.12, 0.18) * size * size, 0.0, [], np.empty((0, 4))
    for _ in range(int(20 * target / (170 * m * m)) + 200):  # houses average ~170 m2
        if built >= target or (limit is not None and len(houses) >= limit):
            break
        corners = _wings(rng, m)
        along = np.ptp(corners[..., 0], axis=1) >= np.ptp(corners[..., 1], axis=1)  # ridges run along the long side
        frontage, p = rng.random() < 0.5, rng.uniform(0, size, 2)  # a plot facing a road, or a back plot near p
        i = rng.integers(len(roads)) if frontage else np.argmin(shapely.distance(lines, shapely.points(p)))
        s = rng.uniform(0, lines[i].length) if frontage else lines[i].project(shapely.points(p))
        (x0, y0), (x1, y1) = lines[i].interpolate(s - 1).coords[0], lines[i].interpolate(s + 1).coords[0]
        angle = math.atan2(y1 - y0, x1 - x0)  # the road's direction there
        if frontage:  # set back a few metres from the verge
            side, setback = rng.choice([-1, 1]), roads[i][1] + (VERGE_M + rng.uniform(1.5, 6)) * m
            offset = setback - corners[..., 1].min() if side > 0 else -setback - corners[..., 1].max()
            p = np.array(lines[i].interpolate(s).coords[0]) + offset * np.array([-math.sin(angle), math.cos(angle)])
            angle += rng.normal(0, 0.04)
        else:  # on the road's grid, now and then at random
            angle += rng.integers(2) * np.pi / 2 + rng.normal(0, 0.12) if rng.random() < 0.8 else rng.uniform(0, np.pi)
        c, sn = math.cos(angle), math.sin(angle)
        corners = corners @ np.array([[c, sn], [-sn, c]]) + p  # rotate by `angle`, then move to p
        b = np.concatenate([corners.reshape(-1, 2).min(0), corners.reshape(-1, 2).max(0)])
        if b[:2].min() < 1 or b[2:].max() > size - 1:  # wholly inside, so the mask shows all of every outline
            continue
        poly = shapely.union_all(shapely.polygons(corners))
        near = np.flatnonzero((bounds[:, :2] < b[2:] + gap).all(1) & (bounds[:, 2:] > b[:2] - gap).all(1))
        if keep_out.intersects(poly) or any(houses[j][0].distance(poly) < gap for j in near):
            continue
        houses.append((poly, corners, np.where(along, angle, angle + np.pi / 2)))
        bounds, built = np.vstack([bounds, b]), built + poly.area
    return houses


def _render(rng: np.random.Generator, size: int, m: float, roads: list, houses: list[_House]) -> tuple[np.ndarray, ...]:
    """Paint ground, roads, trees, shadows and roofs, each over the last: (RGB uint8, 0/1 roof mask)."""
    az, elev = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(45, 65))
    sun = np.array([np.cos(az), np.sin(az)])  # horizontal direction towards the sun, in pixel axes
    reach = m / np.tan(elev)  # shadow length in pixels per metre of height
    mask = _raster([(h[0], 1) for h in houses], size).astype(bool)
    # Two texture fields shared by all layers: the layers never overlap, so nobody sees the reuse.
    fine = (0.6 * _noise(rng, size, 0.7 * m) + 0.4 * rng.standard_normal((size, size), dtype=np.float32)).ravel()
    mid = _noise(rng, size, 4 * m).ravel()
    img, yard = _ground(rng, size, m, mask)
    flat = img.reshape(-1, 3)  # a view: writes to chosen pixels land in img
    flat *= (1 + 0.1 * fine + 0.06 * mid)[:, None]
    # Roads over dirt verges; the verge grass is worn to dirt in patches.
    verges = [(ln.buffer(hw + VERGE_M * m), 1) for ln, hw, _ in roads]
    road = _raster(verges + [(ln.buffer(hw), cls) for ln, hw, cls in roads], size)
    i = np.flatnonzero(road)
    cls = road.ravel()[i]
    worn = np.where(cls == 1, np.clip(0.55 + 0.35 * mid[i], 0, 1), 1.0)[:, None]
    flat[i] += worn * (ROAD_COLOURS[cls] * (1 + 0.06 * mid[i] + 0.05 * fine[i])[:, None] - flat[i])
    # Trees: a third scattered, the rest in groves; none rooted in a yard or on a road surface.
    n = int(size * size / (m * m) / 250)
    groves = rng.uniform(0, size, (max(1, n // 12), 2))[rng.integers(max(1, n // 12), size=n - n // 3)]
    xy = np.vstack([rng.uniform(0, size, (n // 3, 2)), groves + rng.normal(0, 7 * m, groves.shape)])
    col, row = np.clip(xy.astype(int), 0, size - 1).T
    ok = (yard[row // 4, col // 4] < 0.9) & (road[row, col] < 2)
    xy, radius = xy[ok], rng.uniform(1.5, 4.5, len(xy))[ok] * m
    disks = shapely.buffer(shapely.points(xy), radius, quad_segs=6)
    soft = _blur(_raster([(d, 1) for d in disks], size).astype(np.float32), 0.6 * m)
    crowns = (soft > 0.2) & (soft + 0.15 * fine.reshape(size, size) + 0.1 * _noise(rng, size, m) > 0.5) & ~mask
    gy, gx = np.gradient(_blur(crowns.astype(np.float32), 1.5 * m))  # crowns as domes: lit on the side facing the sun
    i = np.flatnonzero(crowns)
    light = np.clip(1 - 8 * (gx.ravel()[i] * sun[0] + gy.ravel()[i] * sun[1]), 0.5, 1.5) * (1 + 0.22 * fine[i])
    flat[i] = (TREE + np.clip(0.5 + 0.4 * mid[i], 0, 1)[:, None] * (OLIVE - TREE)) * light[:, None]
    # Roofs: a kind, height (metres) and colour per house; owner maps each roof wing to its house.
    kind, height = rng.choice(len(ROOF_COLOURS), len(houses), p=ROOF_WEIGHTS), rng.uniform(3, 8, len(houses))
    colour = ROOF_COLOURS[kind] * rng.uniform(0.85, 1.1, (len(houses), 1)) + rng.normal(0, 3, (len(houses), 3))
    owner = np.repeat(np.arange(len(houses)), [len(h[1]) for h in houses]).astype(int)
    corners = np.concatenate([h[1] for h in houses] + [np.zeros((0, 4, 2))])
    ridges = np.concatenate([h[2] for h in houses] + [np.zeros(0)])
    # Cast shadows: roof wings swept away from the sun by the house height, crowns swept from 1 to 6 m up.
    swept = [shapely.multipoints([*c, *(c - sun * h)]).convex_hull
             for c, h in zip(corners, reach * height[owner], strict=True)]
    trunks = shapely.linestrings(np.stack([xy - sun * reach, xy - 6 * sun * reach], axis=1))
    swept += list(shapely.buffer(trunks, radius, quad_segs=6))
    shadow = _raster([(g, 1) for g in swept], size).astype(bool) & ~crowns
    s = _blur(shadow.astype(np.float32), 0.8).ravel()
    i = np.flatnonzero((s > 0.01) & ~mask.ravel())
    flat[i] *= 1 - s[i, None] * SHADE
    i = np.flatnonzero(mask)  # roofs last, from the very polygons of the mask
    wing = _raster([(p, j + 1) for j, p in enumerate(shapely.polygons(corners))], size, np.int32, all_touched=True)
    k = wing.ravel()[i] - 1  # each roof pixel's wing: all_touched reaches every pixel centred in a footprint
    centre, finish = corners[k].mean(1), FINISH[kind[owner[k]]]
    shade = _roof_shade(i % size + 0.5 - centre[:, 0], i // size + 0.5 - centre[:, 1], m, sun, ridges[k], finish)
    flat[i] = colour[owner[k]] * (shade * (1 + 0.06 * mid[i] + 0.05 * fine[i]))[:, None]
    p = np.pad(mask, 1)  # the outermost roof pixels: darker eaves and gutters
    img[mask & ~(p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])] *= 0.82
    img *= rng.uniform(0.95, 1.05, 3).astype(np.float32)  # per-scene exposure and white balance
    rgb = Image.fromarray(np.clip(img, 0, 255, out=img).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.5))  # lens
    return np.asarray(rgb), mask.astype(np.uint8)


def _roof_shade(x: np.ndarray, y: np.ndarray, m: float, sun: np.ndarray, ridge: np.ndarray,
                kind: np.ndarray) -> np.ndarray:
    """Brightness of roof pixels at (x, y) from their wing's centre: two planes meeting at a ridge, lit by the sun.

    `ridge` is the wing's ridge direction, `kind` its FINISH: slabs are flat, sheets seamed, tiles coursed."""
    ca, sa = np.cos(ridge), np.sin(ridge)
    u, v = x * ca + y * sa, -x * sa + y * ca  # along and across the ridge
    facing = np.sign(v) * (-sa * sun[0] + ca * sun[1])  # each plane slopes down away from the ridge
    shade = np.where(kind == 0, 1.0, 0.88 + 0.2 * facing + 0.1 * (np.abs(v) < 0.7))  # the ridge cap catches light
    courses = np.choose(kind, [0.0, np.sin(2 * np.pi * u / (0.9 * m)), np.sin(2 * np.pi * v / (0.5 * m))])
    return shade * (1 + 0.05 * courses)


def _ground(rng: np.random.Generator, size: int, m: float, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grass, lush to dry, bare earth and trodden yards round houses: (float RGB, quarter-resolution yard weight).

    Smooth fields, so drawn at quarter resolution and upsampled: that saves most of the time."""
    lo, m4 = -(-size // 4), m / 4
    houses = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((lo, lo), Image.BOX), np.float32) / 255
    yard = np.clip(_blur(houses, 3 * m4) * 4, 0, 1)
    bare = np.clip((_noise(rng, lo, 50 * m4) + 0.5 * _noise(rng, lo, 12 * m4) - 0.9) * 1.2, 0, 1)
    dry = np.clip(0.5 + 0.3 * _noise(rng, lo, 15 * m4), 0, 1)[..., None]
    small = LUSH + dry * (DRY - LUSH)
    small += np.maximum(bare, 0.85 * yard)[..., None] * (SOIL - small)
    return np.array(Image.fromarray(small.astype(np.uint8)).resize((size, size), Image.BICUBIC), np.float32), yard


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temp name in the same folder, then rename: readers never see half a file."""
    with writing(path), atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _tif_bytes(bands: np.ndarray, crs: CRS, tf: Affine) -> bytes:
    """A tiled, deflate-compressed uint8 GeoTIFF of `bands` (count, height, width); 3 bands are RGB."""
    count, height, width = bands.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=width, height=height, count=count, dtype="uint8", crs=crs, transform=tf,
                      tiled=True, blockxsize=256, blockysize=256, compress="deflate", predictor=2) as dst:
            dst.write(bands)
        return mem.read()


def _geojson_bytes(polygons: list[Polygon], crs: CRS, tf: Affine) -> bytes:
    """Footprints as an RFC 7946 FeatureCollection: pixel -> scene CRS (by `tf`) -> lon/lat."""
    to_lonlat = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    # One vectorised call for all vertices; RFC 7946 wants counter-clockwise outer rings.
    scene = shapely.transform(np.array(polygons, dtype=object), lambda xy: np.column_stack(apply_affine(tf, *xy.T)))
    lonlat = shapely.orient_polygons(shapely.transform(scene, lambda xy: np.column_stack(to_lonlat.transform(*xy.T))))
    features = [{"type": "Feature", "properties": {"class": "building"}, "geometry": mapping(g)} for g in lonlat]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()
