"""Per-trust effects and random-effects synthesis across trusts (meta-analysis, meta-regression)."""
