"""Bring your own imagery: GeoTIFF -> image tiles, GeoJSON -> label tiles, mask tiles -> GeoJSON.

- `tile`:      cut a GeoTIFF of any CRS into slippy-map image tiles (`tile_geotiff`).
- `rasterize`: burn GeoJSON polygons into palette label tiles for a set of tiles (`rasterize_geojson`).
- `features`:  turn mask tiles back into lon/lat polygons merged across tile borders (`mask_features`).
- `split`:     the "touching" class between buildings that meet, and splitting blobs into one polygon each.
- `footprints`: outlines squared to each building's own axes (`regularize_polygons`, over buildingregulariser).
- `output`:    write features as GeoJSON or GeoPackage by the file's extension (`write_features`).
"""
