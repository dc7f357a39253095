"""Propensity-score matching and weighting (methods ``psm`` and ``ipw``)."""
