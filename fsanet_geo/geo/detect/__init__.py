"""fsanet_geo.geo.detect: the detection run (predictors, per-scene runs, jobs, torchrun).

May import everything in geo, fsanet_geo.model and fsanet_geo.model.files; nothing in geo
imports it.
"""
