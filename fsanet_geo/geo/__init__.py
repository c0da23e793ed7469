"""fsanet_geo.geo"""
