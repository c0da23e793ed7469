"""fsanet_geo.train"""
