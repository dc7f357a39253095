"""Shared simulated data for the synthesis tests."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from evaltool.data.simulate import simulate


@functools.cache
def simulated(seed: int = 1, n_schools: int = 400, effect_scale: float = 1.0):
    return simulate(seed=seed, n_schools=n_schools, effect_scale=effect_scale)


def canonical(panel: pd.DataFrame) -> pd.DataFrame:
    """The simulator's panel with evaltool's canonical column names."""
    return panel.rename(columns={"urn": "school", "trust_id": "trust"}).assign(
        school=lambda d: d["school"].astype(str), join_year=lambda d: d["join_year"].astype(float)
    )


def truth_in_window(data, post: tuple[int, int]) -> pd.Series:
    """True effect of each trust over event times ``post`` (mean over schools of their school-year means)."""
    effects = pd.DataFrame(data.truth["school_year_effects"]["data"], columns=data.truth["school_year_effects"]["columns"])
    schools = data.panel.groupby("urn")[["trust_id", "join_year"]].first()
    effects = effects.join(schools, on="urn")
    event = effects["year"] - effects["join_year"].astype(int)
    window = effects[(event >= post[0]) & (event <= post[1])]
    return window.groupby(["trust_id", "urn"])["effect"].mean().groupby("trust_id").mean()


@pytest.fixture(scope="module")
def sim():
    return simulated()


@pytest.fixture(scope="module")
def frame(sim):
    return canonical(sim.panel)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture(scope="session")
def sim_tools():
    """The helpers above, for tests that need other seeds or the truth (tests are not a package)."""
    class Tools:
        pass

    tools = Tools()
    tools.simulated = simulated
    tools.canonical = canonical
    tools.truth_in_window = truth_in_window
    return tools
