"""Bring your own imagery: an area -> tiles -> downloaded imagery, GeoTIFF -> image tiles, GeoJSON -> label
tiles, mask tiles -> GeoJSON.

- `cover`:     the tiles an area needs, from polygons, a bbox or a GeoTIFF's data, as tiles.csv (`cover`).
- `download`:  fetch those tiles from a tile service, resumably (`download_tiles`); `fetch`: one tile over HTTP.
- `tile`:      cut a GeoTIFF of any CRS (a path or a COG's URL) into slippy-map image tiles (`tile_geotiff`).
- `rasterize`: burn GeoJSON polygons into palette label tiles for a set of tiles (`rasterize_geojson`).
- `features`:  turn mask tiles back into lon/lat polygons merged across tile borders (`mask_features`).
- `split`:     the "touching" class between buildings that meet, and splitting blobs into one polygon each.
- `footprints`: outlines squared to each building's own axes (`regularize_polygons`, over buildingregulariser).
- `output`:    write features as GeoJSON or GeoPackage by the file's extension (`write_features`).
"""
