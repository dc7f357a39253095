"""Simulate English secondary schools, some of which join trusts or federations.

The simulator produces four coherent tables and the exact truth of every effect:

* ``panel`` (school x year), ``subgroups`` (school x year x pupil subgroup) and
  ``pupils`` (pupil level, only ``settings.pupil_years``) are all computed from
  one set of simulated pupils, so the school means are the means of the pupils;
* ``trusts`` (one row per trust) holds the collaboration type, the federation
  form and the depth checklist of Atkinson et al. (2007, Appendix 6);
* ``truth`` holds the structural parameters and the *realised* average effects
  (group-time, event time, cohort, type, form, trust, subgroup and every treated
  school-year), so a test can compute the truth of any estimand exactly.

Every random draw comes from one :class:`numpy.random.Generator` built from
``settings.seed`` and passed down explicitly, in a fixed order that does not
depend on ``effect_scale`` or ``pretrend_slope``: two simulations that differ only
in those settings share every pupil and every shock, so their difference is the
effect (or the pre-trend) alone.
"""

from evaltool.data.simulate.constants import COLLABORATION_TYPES, DEPTH_ITEMS, ETHNIC_GROUPS, REGIONS, SUBGROUPS
from evaltool.data.simulate.generate import SimulatedData, simulate
from evaltool.data.simulate.settings import SimulationSettings
from evaltool.data.simulate.tables import depth_scores
from evaltool.data.simulate.write import write_simulation

__all__ = [
    "COLLABORATION_TYPES",
    "DEPTH_ITEMS",
    "ETHNIC_GROUPS",
    "REGIONS",
    "SUBGROUPS",
    "SimulatedData",
    "SimulationSettings",
    "depth_scores",
    "simulate",
    "write_simulation",
]
