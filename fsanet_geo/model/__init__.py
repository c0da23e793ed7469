"""fsanet_geo.model"""
