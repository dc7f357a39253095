"""A simulated study written to disk once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaltool.data.simulate import SimulatedData, SimulationSettings, simulate, write_simulation


@pytest.fixture(scope="session")
def simulated(tmp_path_factory) -> tuple[SimulatedData, Path]:
    data = simulate(SimulationSettings(seed=7, n_schools=300))
    folder = tmp_path_factory.mktemp("sim")
    write_simulation(data, folder)
    return data, folder
