"""Detect the example scene's objects from Python: model -> detect_scene -> write_detections."""

import sys
from pathlib import Path

import fsanet_geo
from fsanet_geo import build_model, detect_scene, load_model, write_detections

# the example scene beside this script, so that it runs from any folder
scene = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent / "data" / "example_scene.tif")
weights = Path(fsanet_geo.__file__).parent / "weights" / "demo.safetensors"  # the packaged demo model
model = load_model(weights) if weights.is_file() else build_model("fsanet_r18_lite")  # untrained fallback
detections = detect_scene(scene, model, tile_size=800, batch_size=2)  # GeoDataFrame in the scene's CRS
write_detections(detections, "api_detections.gpkg", overwrite=True)  # also .geojson .shp .fgb .csv .json
print(detections.groupby("class_name").size().to_string(), f"\n{len(detections)} objects -> api_detections.gpkg")
