"""fsanet_geo.data"""
