"""Multilevel (linear mixed) models: pupils in schools in trusts, and school growth models."""

from evaltool.estimators.multilevel import method  # noqa: F401
