"""fsanet_geo.geo.seams: merging detections across tile borders (seam NMS in scene pixels).

May import the geo vocabulary and fsanet_geo.ops; never pixels, outputs or detect.
"""
