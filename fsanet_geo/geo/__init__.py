"""fsanet_geo.geo: whole scenes in, georeferenced detections out.

Owns the shared vocabulary of a detection run (``settings``, ``windows``, ``detections``,
``scene_crs``), which imports nothing of the subpackages. Imports run one way:
``pixels`` -> ``seams`` -> ``outputs`` -> ``detect`` (each may use those before it; see
docs/ARCHITECTURE.md).
"""
