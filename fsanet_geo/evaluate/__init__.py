"""fsanet_geo.evaluate"""
