"""Column presets of the DfE performance tables: raw header → tidy name, in one place.

``ks4`` follows ``england_ks4final.csv`` (also provisional/revised) and ``ks2`` ``england_ks2final.csv``
as published on the DfE's compare-school-performance download pages.  A preset column missing from a
year's file (measures come and go: Progress 8 began in 2016) leaves that year's value missing and is
listed in the data report; the URN column is always required.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Tidy columns that hold text (identifiers, codes), not numbers.
TEXT_COLUMNS: frozenset[str] = frozenset({"urn", "la_code", "school_name"})


@dataclass(frozen=True)
class Subgroup:
    """One pupil subgroup of a table: its outcome and pupil-count columns."""

    subgroup_type: str
    subgroup: str
    outcome_column: str
    count_column: str


@dataclass(frozen=True)
class Preset:
    """A table layout: raw → tidy columns, the subgroup breakdowns and their outcome's tidy name."""

    name: str
    columns: dict[str, str]
    outcome: str | None = None
    subgroups: tuple[Subgroup, ...] = field(default_factory=tuple)

    def raw_urn(self) -> str:
        """The raw header mapped to ``urn``."""
        return next(raw for raw, tidy in self.columns.items() if tidy == "urn")


KS4 = Preset(
    name="ks4",
    columns={
        "URN": "urn",
        "LEA": "la_code",
        "TPUP": "cohort_size",
        "TOTPUPS": "total_pupils",
        "ATT8SCR": "attainment8",
        "P8MEA": "progress8",
        "PTL2BASICS_94": "basics_94",
        "PTL2BASICS_95": "basics_95",
        "EBACCAPS": "ebacc_aps",
        "PTFSM6CLA1A": "fsm_pct",
        "PTEALGRP2": "eal_pct",
        "PSEN_ALL4": "sen_pct",
        "KS2APS": "ks2_prior",
    },
    outcome="attainment8",
    subgroups=(
        Subgroup("disadvantage", "disadvantaged", "ATT8SCR_FSM6CLA1A", "TFSM6CLA1A"),
        Subgroup("disadvantage", "not_disadvantaged", "ATT8SCR_NFSM6CLA1A", "TNOTFSM6CLA1A"),
        Subgroup("prior_attainment", "low_prior", "ATT8SCR_LO", "TPRIORLO"),
        Subgroup("prior_attainment", "middle_prior", "ATT8SCR_MID", "TPRIORAV"),
        Subgroup("prior_attainment", "high_prior", "ATT8SCR_HI", "TPRIORHI"),
        Subgroup("gender", "boys", "ATT8SCR_BOYS", "TBOYS"),
        Subgroup("gender", "girls", "ATT8SCR_GIRLS", "TGIRLS"),
        Subgroup("eal", "eal", "ATT8SCR_EAL", "TEAL"),
        Subgroup("eal", "not_eal", "ATT8SCR_NEAL", "TNEAL"),
    ),
)

KS2 = Preset(
    name="ks2",
    columns={
        "URN": "urn",
        "LEA": "la_code",
        "TELIG": "cohort_size",
        "READ_AVERAGE": "ks2_read",
        "MAT_AVERAGE": "ks2_maths",
        "PTRWM_EXP": "rwm_expected",
        "PTFSM6CLA1A": "fsm_pct",
        "PTEAL": "eal_pct",
        "PSENELK": "sen_support_pct",
        "PSENELSE": "sen_ehcp_pct",
    },
    outcome="rwm_expected",
    subgroups=(
        Subgroup("disadvantage", "disadvantaged", "PTRWM_EXP_FSM6CLA1A", "TFSM6CLA1A"),
        Subgroup("disadvantage", "not_disadvantaged", "PTRWM_EXP_NotFSM6CLA1A", "TNotFSM6CLA1A"),
    ),
)

NONE = Preset(name="none", columns={})

PRESETS: dict[str, Preset] = {"ks4": KS4, "ks2": KS2, "none": NONE}


def resolve(name: str, overrides: dict[str, str]) -> Preset:
    """The preset ``name`` with ``sources.columns`` applied (a raw name mapped twice keeps the override).

    A tidy name that the overrides give to another raw column replaces the preset's column of that name.
    """
    base = PRESETS[name]
    taken = set(overrides.values())
    columns = {raw: tidy for raw, tidy in base.columns.items() if tidy not in taken and raw not in overrides}
    columns.update(overrides)
    return Preset(name=base.name, columns=columns, outcome=base.outcome, subgroups=base.subgroups)
