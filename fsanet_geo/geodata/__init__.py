"""Training data from GeoTIFF scenes and vector labels (the user's own GIS data).

Modules: :mod:`~fsanet_geo.geodata.types` (the shared records), ``labels`` (vector layer ->
pixel boxes), ``sources`` (``--scene/--labels`` pairs and ``--scenes list.csv``),
``spatial_split`` (validation blocks without leakage), ``chips`` (training chips read on the
fly with ``fsanet detect``'s reader and stretch), ``export_chips`` (the same chips as a COCO set).
"""
