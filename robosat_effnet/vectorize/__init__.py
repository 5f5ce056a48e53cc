"""Masks to outlines a mapper can upload: the last stage.

- `features`:   mask (or probability) tiles to lon/lat polygons, joined across tile borders (`mask_features`).
- `split`:      neighbours apart again along a predicted "touching" band (a watershed), pieces joined across tiles.
- `footprints`: outlines squared to each building's own axes (`regularize_polygons`, over buildingregulariser).
- `output`:     features written as GeoJSON or GeoPackage by the file's extension (`write_features`).
- `conflate`:   only the predicted buildings the map lacks (`rs-effnet conflate`); `osm`: OSM files in and out.
"""
