"""School × year frame → dense unit × period arrays for the group-time engine.

The Callaway–Sant'Anna engine works on a matrix ``Y[unit, period]`` (NaN where
a school has no outcome that year), a covariate cube ``X[unit, period, k]`` and
one cohort per school (``inf`` = never joined within the data).  Building them
once with integer codes (no pivot tables, no loops over rows) keeps every
group-time cell a handful of vector operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from evaltool.errors import DataError, EstimationError
from evaltool.estimators.inference import ClusterLabels, school_cluster_labels
from evaltool.results import SampleReport

NEVER = np.inf


@dataclass(frozen=True)
class PanelArrays:
    """Dense arrays of a school × year panel.

    Attributes
    ----------
    units
        School ids, sorted (row ``i`` of every array).
    periods
        Sorted years (column ``j``).
    y
        Outcome, shape ``(n_units, n_periods)``; NaN where missing or not observed.
    x
        Covariates, shape ``(n_units, n_periods, k)`` (``k`` may be 0); NaN where missing.
    cohort
        First year in the collaboration per school; ``inf`` for never joined.
    clusters
        Integer cluster code per school (0 … n_clusters − 1).
    n_clusters
        Number of clusters.
    cluster_note
        The cluster level (``"school"``, ``"trust"`` …) for the results.
    covariates
        Covariate names (the last axis of ``x``).
    cluster_notes
        What resolving the cluster labels involved (blank ids filled, trusts linked), for the report.
    """

    units: np.ndarray
    periods: np.ndarray
    y: np.ndarray
    x: np.ndarray
    cohort: np.ndarray
    clusters: np.ndarray
    n_clusters: int
    cluster_note: str
    covariates: tuple[str, ...]
    cluster_notes: tuple[str, ...] = ()

    @property
    def n_units(self) -> int:
        return len(self.units)

    @cached_property
    def cohort_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``np.unique(cohort, return_inverse=True)``: the sorted cohorts (never joined last) and each school's code."""
        return np.unique(self.cohort, return_inverse=True)

    def subset(self, keep: np.ndarray) -> PanelArrays:
        """The same arrays for the schools where ``keep`` is true (clusters re-coded)."""
        codes, uniques = pd.factorize(self.clusters[keep], sort=True)
        return PanelArrays(
            units=self.units[keep],
            periods=self.periods,
            y=self.y[keep],
            x=self.x[keep],
            cohort=self.cohort[keep],
            clusters=codes.astype(np.int64),
            n_clusters=len(uniques),
            cluster_note=self.cluster_note,
            covariates=self.covariates,
            cluster_notes=self.cluster_notes,
        )


def panel_arrays(
    frame: pd.DataFrame,
    outcome: str,
    *,
    covariates: tuple[str, ...] | list[str] = (),
    cluster: str | ClusterLabels = "school",
) -> PanelArrays:
    """Build :class:`PanelArrays` from a frame with canonical columns.

    Parameters
    ----------
    frame
        One row per school and year with ``school``, ``year``, ``join_year``
        (NaN = never joined), ``outcome``, the covariates and, for clustering,
        ``trust`` or ``local_authority``.
    outcome, covariates
        Column names.
    cluster
        ``"school"``, a school-level column (``"trust"``, ``"local_authority"``), or labels resolved
        beforehand (:func:`~evaltool.estimators.inference.school_cluster_labels`, e.g. from the whole panel
        when ``frame`` is a part of it).  A column is resolved from ``frame``: blanks filled from the
        school's other years, schools in two trusts linking them.

    Raises
    ------
    DataError
        A required column is missing, a school appears twice in a year, or
        its join year differs between rows.
    """
    needed = ["school", "year", "join_year", outcome, *covariates]
    if isinstance(cluster, str) and cluster != "school":
        needed.append(cluster)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"The panel has no column(s) {missing}; map them under columns: in the config "
            f"(outcome/covariates under columns.outcomes/columns.covariates, clustering under columns.{cluster})."
        )
    years = frame["year"].astype(np.int64).to_numpy()
    join = _float_values(frame["join_year"])
    layout = _sorted_layout(frame["school"], years)
    if layout is not None:  # each school's rows together (row i of school rank[i]), the same years in order
        rank, units, periods = layout
        n, t = len(units), len(periods)
        in_order = bool((rank == np.arange(n)).all())
        flat = None if in_order else (np.repeat(rank * t, t) + np.tile(np.arange(t), n))
        unit_code = None
        first_join, consistent = _first_per_run(join, n, t)
        cohort = first_join if in_order else np.empty(n)
        if not in_order:
            cohort[rank] = first_join
        bad_schools = units[rank[~consistent]] if not consistent.all() else None
    else:
        unit_code, units = _unit_codes(frame["school"])
        year_code, periods = _factorize_years(years)
        n, t = len(units), len(periods)
        flat = unit_code.astype(np.int64) * t + year_code
        if np.bincount(flat, minlength=n * t).max(initial=0) > 1:
            raise DataError("The panel has more than one row for some school and year; each school-year must appear once.")
        cohort = np.full(n, np.nan)
        cohort[unit_code] = join  # any row; checked for consistency just below
        agree = (join == cohort[unit_code]) | (np.isnan(join) & np.isnan(cohort[unit_code]))
        bad_schools = units[np.unique(unit_code[~agree])] if not agree.all() else None
    if bad_schools is not None:
        raise DataError(
            "join_year differs between rows of the same school (e.g. "
            f"{', '.join(map(str, bad_schools[:3]))}); it must be constant."
        )
    cohort = np.where(np.isnan(cohort) | (cohort <= 0), NEVER, cohort)

    y = _to_cells(_float_values(frame[outcome]), flat, n * t)
    x = np.full((n * t, len(covariates)), np.nan)
    if covariates:
        x = _to_cells(frame[list(covariates)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float), flat, n * t)

    labels = school_cluster_labels(frame, cluster) if isinstance(cluster, str) and cluster != "school" else cluster
    if not isinstance(labels, ClusterLabels) or labels.level == "school":
        codes, n_clusters, note, notes = np.arange(n), n, "school", ()
    else:
        codes, n_clusters = labels.codes_for(np.asarray(units))
        note, notes = labels.level.replace("_", " "), labels.notes
    return PanelArrays(
        units=np.asarray(units),
        periods=np.asarray(periods, dtype=np.int64),
        y=y.reshape(n, t),
        x=x.reshape(n, t, len(covariates)),
        cohort=cohort,
        clusters=np.asarray(codes, dtype=np.int64),
        n_clusters=int(n_clusters),
        cluster_note=note,
        covariates=tuple(covariates),
        cluster_notes=tuple(notes),
    )


def _float_values(column: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for anything non-numeric; a float64 column's own memory, not a copy.

    Copying is not free here: a fresh 3 MB array costs hundreds of page faults, and the engine only reads.
    """
    if isinstance(column.dtype, np.dtype) and column.dtype == np.float64:
        return column.to_numpy()
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def _to_cells(values: np.ndarray, flat: np.ndarray | None, size: int) -> np.ndarray:
    """Rows → school × year cells (``flat``: cell of each row; ``None``: rows already in cell order).

    Rows already in order are returned as they are (no copy): the engine never writes to its arrays, and a
    read-only view of the frame's memory would refuse a write rather than change the frame.
    """
    if flat is None:
        return values
    out = np.full((size, *values.shape[1:]), np.nan)
    out[flat] = values
    return out


def _first_per_run(values: np.ndarray, n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """First value of each run of ``t`` rows, and whether the run's values all equal it (NaN equal to NaN)."""
    grid = values.reshape(n, t)
    first = grid[:, 0].copy()
    same = (grid == first[:, None]) | (np.isnan(grid) & np.isnan(first)[:, None])
    return first, same.all(axis=1)


def _sorted_layout(school: pd.Series, years: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(rank, schools, years)`` when the frame is a school-sorted balanced panel, else ``None``.

    ``rank[i]`` is the position among the sorted ``schools`` of the ``i``-th run of rows.

    The canonical panel is sorted by school and year, and usually every school has every year: then the rows
    are ``n`` runs of the same ``t`` increasing years, checked with two vector comparisons, and only one id
    per school is factorised (hashing every row's id is most of the cost of the general route).
    """
    ids = school.to_numpy()
    if len(ids) == 0 or (school.dtype.kind not in "iu" and school.hasnans):
        return None
    t = int(np.argmax(ids != ids[0])) or len(ids)  # rows of the first school
    if len(ids) % t:
        return None
    n = len(ids) // t
    grid = years.reshape(n, t)
    if not ((grid == grid[0]).all() and (np.diff(grid[0]) > 0).all()):
        return None
    runs = ids.reshape(n, t)
    if not (runs == runs[:, :1]).all():
        return None
    code, units = _factorize_sorted(school.iloc[::t])
    if len(units) != n:  # a school in two runs
        return None
    return code, units, grid[0].copy()


def _unit_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_factorize_sorted` of the school ids, by their runs when each school's rows are together.

    Comparing neighbours finds each school's block and only one id per school is hashed.  If a school's rows
    are not together (a repeated run), the ids are factorised directly.
    """
    ids = values.to_numpy()
    if len(ids) < 2 or values.isna().any():
        return _factorize_sorted(values)
    new_run = np.empty(len(ids), dtype=bool)
    new_run[0] = True
    np.not_equal(ids[1:], ids[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    run_code, names = _factorize_sorted(values.iloc[starts])
    if len(names) != len(starts):
        return _factorize_sorted(values)
    return np.repeat(run_code, np.diff(np.append(starts, len(ids)))), names


def _factorize_sorted(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted unique ids: integer ids in numeric order, any others as strings.

    String order is :func:`_factorize_as_strings`'s; integer ids (library use; the pipeline's ids are strings)
    keep their numeric order, which needs no conversion and is already sorted in a sorted panel.
    """
    if values.dtype.kind in "iu":
        raw = values.to_numpy()
        if len(raw) < 2 or (raw[1:] > raw[:-1]).all():  # sorted and distinct: the codes are the positions
            return np.arange(len(raw)), raw.copy()
        codes, uniques = pd.factorize(raw, sort=True)
        return codes, np.asarray(uniques)
    return _factorize_as_strings(values)


def _factorize_as_strings(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted unique values of ``values.astype(str)`` (same as ``pd.factorize(..., sort=True)``).

    The raw values are factorised first and only the unique ones turned into strings: hashing integer ids is
    several times faster than hashing their strings.  Falls back to the direct route when that would not be
    the same (missing ids, or distinct raw values with the same string such as ``1`` and ``"1"``).
    """
    codes, uniques = pd.factorize(values)
    names = np.asarray(pd.Series(uniques, dtype=values.dtype).astype(str), dtype=object)
    if (codes < 0).any() or len(set(names)) != len(names):
        codes, sorted_names = pd.factorize(values.astype(str), sort=True)
        return codes, np.asarray(sorted_names)
    order = np.argsort(names, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], names[order]


def _factorize_years(years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and sorted unique years (as ``pd.factorize(years, sort=True)``), by counting: years span a short range."""
    if len(years) == 0 or years.max() - years.min() > 100_000:
        return pd.factorize(years, sort=True)
    first = years.min()
    present = np.bincount(years - first) > 0
    code_of = np.cumsum(present) - 1
    return code_of[years - first], np.flatnonzero(present) + first


def balance(arrays: PanelArrays, sample: SampleReport, *, stage: str) -> PanelArrays:
    """Keep schools with the outcome (and covariates) in every year; report the rest.

    This is R ``did``'s default (``allow_unbalanced_panel = FALSE``: the panel
    is balanced by dropping incomplete units).  Dropped schools are counted
    by reason in ``sample``.
    """
    has_y = ~np.isnan(arrays.y)
    complete_y = has_y.all(axis=1)
    complete_x = ~np.isnan(arrays.x).any(axis=(1, 2)) if arrays.x.shape[2] else np.ones(arrays.n_units, bool)
    drop_y = ~complete_y
    drop_x = complete_y & ~complete_x
    sample.exclude(
        "school not observed with the outcome in every year (balanced panel required; "
        "set unbalanced: available_pairs to use them)",
        int(has_y[drop_y].sum()),
        int(drop_y.sum()),
        stage=stage,
        changes_estimand=bool(drop_y.any()),
        attrition=True,
    )
    sample.exclude(
        "school with a missing covariate in some year (balanced panel required)",
        int(has_y[drop_x].sum()),
        int(drop_x.sum()),
        stage=stage,
        changes_estimand=bool(drop_x.any()),
        attrition=True,
    )
    keep = complete_y & complete_x
    if keep.all():
        return arrays
    if not keep.any():
        raise EstimationError(
            "No school has the outcome (and covariates) in every year, so the balanced panel is empty. "
            "Set unbalanced: available_pairs, or restrict the years with data.exclude_years.",
            user_error=True,
        )
    return arrays.subset(keep)
