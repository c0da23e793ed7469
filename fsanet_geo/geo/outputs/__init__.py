"""fsanet_geo.geo.outputs: what a run writes (vector files, sidecars, journal, preview) and how safely.

May import the geo vocabulary and geo.pixels (scene names, fingerprints); never detect.
"""
