"""Diagnostics: covariate balance, overlap, pre-trends and placebo tests."""
