"""Sensitivity analyses: how strong would hidden bias have to be to change the answer?

* :mod:`evaltool.sensitivity.honest`: Rambachan & Roth (2023) robust confidence intervals for an event-study
  effect when parallel trends may fail (relative magnitudes Δ^RM(M̄) and smoothness Δ^SD(M)), and the
  breakdown value.
* :mod:`evaltool.sensitivity.pretrend_power`: Roth (2022) power of the pre-trend test against linear
  violations, the slopes it detects with 50% and 80% power, and the bias such an undetected trend causes.
* :mod:`evaltool.sensitivity.rosenbaum`: Rosenbaum (2002) bounds for matched designs (Wilcoxon signed-rank
  p-value and Hodges–Lehmann estimate over a grid of Γ, and the breakdown Γ).
* :mod:`evaltool.sensitivity.evalue`: VanderWeele & Ding (2017) E-values for risk ratios and standardised
  mean differences.
* :mod:`evaltool.sensitivity.robustness`: Cinelli & Hazlett (2020) partial R², robustness values and bounds
  benchmarked on an observed covariate, for regression coefficients.

Each module is pure computation on numbers the estimators already produce; import from the submodules.
"""
