"""fsanet_geo.geo.pixels: where pixels come from (local, HTTP, S3 and STAC scenes, AOI, GSD, tiles).

May import the geo vocabulary (settings, windows, detections, scene_crs) and fsanet_geo's
base modules; never seams, outputs or detect.
"""
