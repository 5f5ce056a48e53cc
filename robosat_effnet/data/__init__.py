"""What every stage reads: scenes, tiles' pixels, vectors, probabilities; the same code for training and prediction.

- `raster`:        open a scene (a path or a COG's URL), its CRS and bands, the tiles covering it, and the one
                   scene-to-tile warp that both `rs-effnet tile` and `rs-effnet predict scene.tif` use.
- `remote`:        GeoTIFFs by URL (GDAL's /vsicurl/), their HTTP failures as one line.
- `transforms`:    a tile's pixels as network input (scaling, normalisation), shared by training and prediction,
                   and the training augmentations.
- `geojson`:       GeoJSON read and checked (any declared CRS).
- `vectors`:       polygons from GeoJSON, GeoPackage or any OGR file, and the equal-area CRS areas are measured in.
- `probabilities`: the probability tile format (robosat's), written by predict and read by blocks and features.
- `synthetic`:     generated scenes with known buildings (`rs-effnet sample`, bench's calibration, the tests).
"""
