"""Trust (collaboration) attributes: validation and depth scores.

The trusts file has one row per trust or federation, keyed by its id, with
any of these columns (others are kept and may be used as moderators):

* ``collaboration_type``: aim-based type (Atkinson et al. 2007): expertise,
  cultural, geographic, commonality, innovation (free text is accepted);
* ``federation_form``: e.g. hard / soft;
* ``n_schools``: number of member schools (a positive whole number);
* ``start_year``: first academic year of the collaboration;
* the depth checklist answers (``yes``/``no``; also ``y/n``, ``true/false``,
  ``1/0``; blank = not answered), in three dimensions (:data:`DEPTH_CHECKLIST`).

Depth scores
------------
For each dimension *d* with items answered by the trust,
``depth_d = (number of 'yes') / (number of items answered)``, from 0 (low
depth: low risk and benefit) to 1 (high).  ``depth_total`` is the mean of
the three dimension scores (each dimension weighs the same whatever its number
of items); it is missing if any dimension has no answer.  Items follow
Atkinson et al. (2007), NFER, Appendix 6.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np
import pandas as pd

from evaltool.data.coerce import to_id
from evaltool.errors import DataError

#: Checklist items (column names) by depth dimension.
DEPTH_CHECKLIST: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "organisation": (
            "formal_status",
            "shared_governance",
            "organisational_infrastructure",
            "common_budget",
            "shared_staff",
        ),
        "penetration": ("broad_involvement", "broad_curriculum", "expected_longevity"),
        "joint_investment": (
            "strategic_vision",
            "loss_of_independence",
            "shared_accountability",
            "shared_decision_making",
        ),
    }
)
#: Names of the computed depth-score columns.
DEPTH_SCORES: Final[tuple[str, ...]] = (*(f"depth_{d}" for d in DEPTH_CHECKLIST), "depth_total")

_YES: Final[frozenset[str]] = frozenset({"yes", "y", "true", "1", "1.0"})
_NO: Final[frozenset[str]] = frozenset({"no", "n", "false", "0", "0.0"})


@dataclass
class TrustAttributes:
    """Validated trust attributes, indexed by trust id (text)."""

    frame: pd.DataFrame
    checklist_columns: dict[str, list[str]] = field(default_factory=dict)
    """Checklist items found in the file, by dimension."""
    notes: list[str] = field(default_factory=list)
    """What the reader should know (dimensions without any item, unanswered items)."""


@dataclass(frozen=True)
class IdComparison:
    """Trust ids found in only one of the attributes file and the data."""

    only_in_attributes: tuple[str, ...]
    only_in_data: tuple[str, ...]

    def messages(self, where: str = "data.trusts") -> list[str]:
        out = []
        if self.only_in_attributes:
            out.append(
                f"{len(self.only_in_attributes)} trust id(s) in {where} have no schools in the data and are not "
                f"analysed: {_examples(self.only_in_attributes)}."
            )
        if self.only_in_data:
            out.append(
                f"{len(self.only_in_data)} trust id(s) in the data are missing from {where}, so they have no "
                f"attributes (left out of moderator analyses): {_examples(self.only_in_data)}."
            )
        return out


def _examples(values: Iterable[str], n: int = 5) -> str:
    values = list(values)
    shown = ", ".join(f"'{v}'" for v in values[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def _answers(column: pd.Series, name: str, where: str) -> pd.Series:
    """Checklist answers as 1.0 (yes), 0.0 (no) or NaN (blank)."""
    text = column.astype("string").str.strip().str.lower()
    blank = text.isna() | (text == "")
    yes = text.isin(_YES)
    no = text.isin(_NO)
    bad = ~(blank | yes | no)
    if bad.any():
        examples = _examples(sorted(column[bad].astype(str).unique()), 3)
        raise DataError(
            f"{where}: column '{name}' is a depth checklist item and must be yes or no (or blank when not "
            f"answered); found {int(bad.sum())} other value(s), e.g. {examples}."
        )
    return pd.Series(np.where(yes, 1.0, np.where(no, 0.0, np.nan)), index=column.index)


#: A trusts-file column header usable as a moderator name (the rule of ``meta_analysis.moderators``).
HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]{0,63}$")
#: Names the meta-analysis gives its own columns when it joins the trust attributes to the per-trust estimates.
RESERVED_HEADERS: Final[frozenset[str]] = frozenset({"study", "estimate", "std_error"})


def _check_headers(raw: pd.DataFrame, id_column: str, where: str) -> None:
    """Every header other than the id is a moderator name: a plain word, not code, a path or a reserved name."""
    headers = [str(c) for c in raw.columns if str(c) != id_column]
    bad = [h for h in headers if not HEADER.match(h)]
    if bad:
        raise DataError(
            f"{where}: column header{'s' if len(bad) != 1 else ''} {_examples(bad, 3)} cannot be used as "
            "moderator names; a header must start with a letter and hold only letters, digits, '_' and spaces "
            "(at most 64 characters), e.g. collaboration_type. Rename those columns in the file."
        )
    reserved = sorted(RESERVED_HEADERS.intersection(headers))
    if reserved:
        raise DataError(
            f"{where}: column header{'s' if len(reserved) != 1 else ''} {_examples(reserved)} "
            f"{'are' if len(reserved) != 1 else 'is'} reserved for the per-trust estimates; rename "
            f"{'them' if len(reserved) != 1 else 'it'} in the file (e.g. '{reserved[0]}_value')."
        )


def validate_trusts(raw: pd.DataFrame, *, id_column: str = "trust_id", where: str = "data.trusts") -> TrustAttributes:
    """Check the trusts table and compute the depth scores.

    Raises
    ------
    DataError
        Missing id column, blank or duplicated ids, non-yes/no checklist
        answers, non-numeric ``n_schools``/``start_year``.
    """
    _check_headers(raw, id_column, where)
    if id_column not in raw.columns:
        raise DataError(
            f"{where} has no column '{id_column}' (the trust id); columns are {list(raw.columns)}. "
            "Rename the id column, or map columns.trust to the name used in both files."
        )
    frame = raw.copy()
    ids = to_id(frame[id_column])
    if ids.isna().any():
        raise DataError(f"{where}: {int(ids.isna().sum())} row(s) have no trust id in column '{id_column}'; fill or remove them.")
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise DataError(
            f"{where}: trust ids must be unique; {len(duplicated)} appear more than once, e.g. "
            f"{_examples(duplicated, 3)}. Keep one row per trust."
        )
    frame.index = pd.Index(ids.astype(str), name="trust")
    frame = frame.drop(columns=[id_column])

    for name in ("n_schools", "start_year"):
        if name in frame.columns:
            values = pd.to_numeric(frame[name], errors="coerce")
            bad = values.isna() & frame[name].notna()
            bad |= values.notna() & ~np.isfinite(values.to_numpy(dtype=float))
            if name == "n_schools":
                bad |= values.notna() & ((values < 1) | (values % 1 != 0))
            if bad.any():
                raise DataError(
                    f"{where}: column '{name}' must be a whole number{' of at least 1' if name == 'n_schools' else ''}; "
                    f"found {int(bad.sum())} other value(s), e.g. {_examples(frame.loc[bad, name].astype(str).unique(), 3)}."
                )
            frame[name] = values

    notes: list[str] = []
    found: dict[str, list[str]] = {}
    scores = {}
    for dimension, items in DEPTH_CHECKLIST.items():
        present = [item for item in items if item in frame.columns]
        found[dimension] = present
        if not present:
            scores[f"depth_{dimension}"] = pd.Series(np.nan, index=frame.index)
            notes.append(
                f"{where} has none of the '{dimension}' checklist items ({', '.join(items)}); depth_{dimension} and "
                "depth_total are missing."
            )
            continue
        answers = pd.concat([_answers(frame[item], item, where) for item in present], axis=1)
        for item in present:
            frame[item] = answers.iloc[:, present.index(item)]
        answered = answers.notna().sum(axis=1)
        scores[f"depth_{dimension}"] = answers.sum(axis=1, min_count=1) / answered.where(answered > 0)
        unanswered = int((answered == 0).sum())
        if unanswered:
            notes.append(f"{unanswered} trust(s) answered none of the '{dimension}' items; their depth_{dimension} is missing.")
    for name, values in scores.items():
        frame[name] = values
    frame["depth_total"] = frame[[f"depth_{d}" for d in DEPTH_CHECKLIST]].mean(axis=1, skipna=False)
    return TrustAttributes(frame=frame, checklist_columns=found, notes=notes)


def compare_ids(attributes: TrustAttributes, data_ids: Iterable[str]) -> IdComparison:
    """Trust ids present in only one of the attributes file and the data."""
    data = {str(i) for i in data_ids}
    known = set(attributes.frame.index)
    return IdComparison(only_in_attributes=tuple(sorted(known - data)), only_in_data=tuple(sorted(data - known)))
