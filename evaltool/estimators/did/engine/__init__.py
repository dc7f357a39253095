"""Numerical engines of the DiD front ends: panel arrays, ATT(g, t), aggregation, clustering, bootstrap.

* :mod:`~.panel_arrays` — the balanced school × year arrays;
* :mod:`~.twoperiod` — two-period DiD of one group-time cell (regression, IPW, doubly robust);
* :mod:`~.blocks` — per-cohort blocks of the cells' design (closed-form ATT(g, t) without covariates);
* :mod:`~.att_gt` — :func:`~.att_gt.att_gt`, every group-time effect and its influence functions;
* :mod:`~.sums` — sums of columns within clusters;
* :mod:`~.aggregate` — ``aggregate(kind=…)`` of group-time effects (simple, dynamic, group, calendar);
* :mod:`~.clustering` — which clusters the standard errors use;
* :mod:`~.bootstrap`, :mod:`~._multiplier`, :mod:`~._helper_thread` — the multiplier bootstrap.

Nothing here imports diagnostics, the front ends, the registry or the report: diagnostics build on the
engines, never the reverse.
"""
