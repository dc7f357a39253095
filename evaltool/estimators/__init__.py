"""Estimators: one subpackage per family (``psm/``, ``did/``, ``multilevel/``, ``synthesis/``).

Each family's front ends define a :class:`~evaltool.estimators.base.Method`; the registry
(:mod:`evaltool.estimators.registry`) lists them.
"""
