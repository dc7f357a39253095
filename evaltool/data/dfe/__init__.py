"""England's published files → a validated school × year panel.

:func:`assemble_sources` reads the DfE performance tables and the GIAS extracts named in the ``sources:``
block of a config, and returns an :class:`Assembled` panel with its data-assembly report.  The rules
(markers, URN chains, academic years, movers, the gap years, conversion) are documented in the modules:
:mod:`~evaltool.data.dfe.markers`, :mod:`~evaltool.data.dfe.tables`, :mod:`~evaltool.data.dfe.urns`,
:mod:`~evaltool.data.dfe.membership` and :mod:`~evaltool.data.dfe.assemble`.
"""

from evaltool.data.dfe.assemble import Assembled, assemble_sources
from evaltool.data.dfe.markers import DFE_MARKERS
from evaltool.data.dfe.presets import PRESETS

__all__ = ["DFE_MARKERS", "PRESETS", "Assembled", "assemble_sources"]
