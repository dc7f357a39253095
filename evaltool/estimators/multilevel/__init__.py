"""Multilevel (linear mixed) models: pupils in schools in trusts, and school growth models."""
