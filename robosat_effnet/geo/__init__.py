"""Bring your own imagery: GeoTIFF -> image tiles, GeoJSON -> label tiles, mask tiles -> GeoJSON.

- `tile`:      cut a GeoTIFF of any CRS into slippy-map image tiles (`tile_geotiff`).
- `rasterize`: burn GeoJSON polygons into palette label tiles for a set of tiles (`rasterize_geojson`).
- `features`:  turn mask tiles back into lon/lat polygons merged across tile borders (`mask_features`).
"""
