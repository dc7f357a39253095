"""Difference-in-differences.

Front ends, one per config ``method:`` (options model, ``run``, figures and diagnostics):

* :mod:`~evaltool.estimators.did.method_2x2` — ``did_2x2``, two groups, pre/post;
* :mod:`~evaltool.estimators.did.method_twfe` — ``did_twfe``, two-way fixed effects;
* :mod:`~evaltool.estimators.did.method_event_study` — ``event_study``, TWFE with event-time leads and lags;
* :mod:`~evaltool.estimators.did.method_staggered` — ``did_staggered``, Callaway–Sant'Anna group-time effects.

The numerical engines they call (no config, no diagnostics, no report) are in
:mod:`evaltool.estimators.did.engine`.
"""
