"""Diagnostics: covariate balance, overlap."""
