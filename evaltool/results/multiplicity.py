"""p-values adjusted for testing several subgroups (Holm; Benjamini–Hochberg)."""

from __future__ import annotations

import numpy as np
from statsmodels.stats.multitest import multipletests

#: Names used in the results → statsmodels method names.
METHODS = {"holm": "holm", "bh": "fdr_bh"}


def adjust_pvalues(p_values, method: str) -> np.ndarray:
    """Adjusted p-values; missing (NaN) entries stay missing and are not counted in the family.

    Parameters
    ----------
    p_values
        Unadjusted p-values of one family of tests.
    method
        ``"holm"`` (Holm 1979, family-wise error) or ``"bh"`` (Benjamini & Hochberg 1995,
        false discovery rate).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}")
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=METHODS[method])[1]
    return out
