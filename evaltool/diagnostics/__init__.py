"""Diagnostics: balance, overlap, pre-trends, sensitivity."""
