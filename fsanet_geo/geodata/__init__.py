"""Training data from GeoTIFF scenes and vector labels (the user's own GIS data).

Modules: :mod:`~fsanet_geo.geodata.types` (the shared records); ``sources`` (``--scene/--labels``
pairs and ``--scenes list.csv``); ``labels`` (vector layers -> pixel boxes per scene, through
``label_layer`` (reading, classes), ``label_boxes`` (reprojection, inverse affine, point boxes),
``label_nodata`` (boxes on nodata) and ``label_stats`` (counts by class and size));
``spatial_split`` (validation blocks without leakage); ``scene_pixels`` (the scenes read
through ``fsanet detect``'s reader and stretch); ``chips`` (training chips sampled on the
fly); ``val_blocks`` (validation blocks as an evaluation set); ``export_chips`` (the same
chips as a COCO set).
"""
