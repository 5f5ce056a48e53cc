"""Bring your own imagery and labels: an area -> tiles -> imagery, GeoTIFF -> image tiles, GeoJSON -> label tiles.

- `cover`:     the tiles an area needs, from polygons, a bbox or a GeoTIFF's data, as tiles.csv (`cover`).
- `download`:  fetch those tiles from a tile service, resumably (`download_tiles`); `fetch`: one tile over HTTP.
- `tile`:      cut a GeoTIFF of any CRS (a path or a COG's URL) into slippy-map image tiles (`tile_geotiff`), with
               the scene-to-tile warp of `robosat_effnet.data.raster`.
- `rasterize`: burn GeoJSON polygons into palette label tiles for a set of tiles (`rasterize_geojson`);
  `touching`: the band between neighbouring buildings (`rasterize --touching-px`).
- `blocks`:    the blocks of tiles to label in a new area, at random or where a model is least sure (`blocks`).
"""
