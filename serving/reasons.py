"""Reasons, evidence and the kind of churn, from a customer's SHAP contributions.

Feature families have a role (`reasons:` in the config, carried by the bundle):

- drivers name a cause (`features.causes`): the reasons are the driver families with the largest
  positive contribution, each worded with the customer's values and naming its cause code;
- symptoms (balances falling, money leaving, fewer logins) are the evidence beside them;
- context families (who the customer is, what they hold, the bank's past contacts) are neither.

The kind of churn is the kind whose causes hold the largest share of the positive driver
contributions (each driver family counts for the cause its wording names for this customer);
`unclear` when that share is under `min_type_share` or the drivers add up to less than
`min_driver_logit` (the risk then rests on symptoms or context alone). This needs no truth, so it
works on a bank's real data as on the generated one.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.causes import CAUSES, UNCLEAR

EVIDENCE = 2  # symptom texts shown beside the reasons


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    contribution: float


@dataclass(frozen=True)
class Diagnosis:
    """Why one customer is at risk: reasons (drivers), evidence (symptoms) and the kind of churn."""

    reasons: list[Reason]
    evidence: list[str]
    churn_type: str
    churn_type_confidence: float


@dataclass(frozen=True)
class FamilySpec:
    name: str
    role: str
    texts: tuple[dict[str, Any], ...]


def family_specs(reasons_meta: dict[str, Any], families: list[str]) -> list[FamilySpec]:
    """The bundle's families with their role and texts. A bundle without roles (a bank's own
    table, whose families are its columns) treats every family as a driver named after itself."""
    specs = []
    for family in families:
        entry = reasons_meta.get(family)
        if isinstance(entry, dict) and "role" in entry:
            specs.append(FamilySpec(family, entry["role"], tuple(entry["texts"])))
        else:
            specs.append(FamilySpec(family, "driver", tuple(entry or ())))
    return specs


def diagnose(
    columns: Any,
    by_family: np.ndarray,
    specs: list[FamilySpec],
    top: int,
    min_type_share: float = 0.5,
    min_driver_logit: float = 0.1,
) -> list[Diagnosis]:
    """One diagnosis per row.

    Args:
        columns: the rows' feature values by name (`ModelBundle.columns`).
        by_family: positive SHAP contribution summed per family, shape (rows, families), in the
            order of `specs`.
        top: how many reasons at most.
    """
    n = by_family.shape[0]
    drivers = [k for k, s in enumerate(specs) if s.role == "driver"]
    symptoms = [k for k, s in enumerate(specs) if s.role == "symptom"]
    chosen = {k: _choices(specs[k], columns, n) for k in drivers + symptoms}  # option per row
    code_of = {k: _codes(specs[k]) for k in drivers + symptoms}  # per option, built once
    kinds = ("service_failure", "competitive", "natural")
    per_kind = np.zeros((n, len(kinds)))
    for k in drivers:
        kind = np.array([CAUSES.get(c, (None,))[0] for c in code_of[k]], dtype=object)[chosen[k]]
        for j, name in enumerate(kinds):
            per_kind[:, j] += np.where(kind == name, by_family[:, k], 0.0)
    total = by_family[:, drivers].sum(axis=1) if drivers else np.zeros(n)
    best = per_kind.argmax(axis=1)
    share = np.divide(per_kind.max(axis=1), total, out=np.zeros(n), where=total > 0)
    clear = (total >= min_driver_logit) & (share >= min_type_share)
    order = (
        np.argsort(-by_family[:, drivers], axis=1, kind="stable")[:, :top]
        if drivers
        else np.zeros((n, 0), int)
    )
    evidence_order = (
        np.argsort(-by_family[:, symptoms], axis=1, kind="stable")[:, :EVIDENCE] if symptoms else None
    )
    lists = _Lists(columns)  # the rows' values as Python objects, one conversion per column
    out = []
    for row in range(n):
        values = RowView(lists, row)
        reasons = []
        for j in order[row]:
            k = drivers[j]
            if by_family[row, k] > 0:
                code, text = _worded(specs[k], code_of[k], chosen[k][row], values)
                reasons.append(Reason(code, text, float(by_family[row, k])))
        evidence = []
        if evidence_order is not None:
            for j in evidence_order[row]:
                k = symptoms[j]
                if by_family[row, k] > 0:
                    evidence.append(_worded(specs[k], code_of[k], chosen[k][row], values)[1])
        churn_type = kinds[best[row]] if clear[row] else UNCLEAR
        out.append(Diagnosis(reasons, evidence, churn_type, round(float(share[row]), 4)))
    return out


def _fields(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def _known(columns: Any, name: str, n: int) -> np.ndarray:
    if name not in columns:
        return np.zeros(n, dtype=bool)
    values = columns[name]
    return ~np.asarray([_missing(v) for v in values]) if values.dtype == object else ~np.isnan(values)


def _choices(spec: FamilySpec, columns: Any, n: int) -> np.ndarray:
    """Per row, the index of the first text whose `when` holds and whose placeholders all have a
    value; len(texts) when none does."""
    choice = np.full(n, len(spec.texts))
    for j in reversed(range(len(spec.texts))):
        option = spec.texts[j]
        ok = np.ones(n, dtype=bool)
        when = option.get("when")
        if when is not None:
            present = np.asarray(columns[when], dtype=float) if when in columns else np.full(n, np.nan)
            ok &= present > 0  # a missing value (NaN) compares False
        for name in _fields(str(option["text"])):
            ok &= _known(columns, name, n)
        choice[ok] = j
    return choice


def _codes(spec: FamilySpec) -> np.ndarray:
    """The code of each text, and for 'no text fits' the family's last code."""
    codes = [option.get("code") or spec.name.upper() for option in spec.texts]
    return np.array([*codes, codes[-1] if codes else spec.name.upper()], dtype=object)


def _worded(spec: FamilySpec, codes: np.ndarray, choice: int, values: RowView) -> tuple[str, str]:
    """(code, text) of option `choice` (`codes`: the family's `_codes`)."""
    code = codes[choice]
    if choice < len(spec.texts):
        try:
            return code, str(spec.texts[choice]["text"]).format_map(values)
        except (KeyError, ValueError, TypeError):
            pass
    return code, wording(spec, values)[1]


def wording(spec: FamilySpec, values: RowView | dict[str, Any]) -> tuple[str, str]:
    """(code, text) of the family for this customer: the first text whose `when` holds and whose
    placeholders all have a value (a text never shows `nan`)."""
    for option in spec.texts:
        when = option.get("when")
        if when is not None and (_missing(values.get(when)) or float(values[when]) <= 0):
            continue
        text = str(option["text"])
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(text) if name]
            if any(_missing(values[name]) for name in fields):
                continue
            return option.get("code") or spec.name.upper(), text.format_map(values)
        except (KeyError, ValueError, TypeError):
            break
    codes = [o.get("code") for o in spec.texts if o.get("code")]
    code = codes[-1] if codes else spec.name.upper()
    if spec.texts:
        return (
            code,
            f"{spec.name.replace('_', ' ').capitalize()}: not enough data for this customer to describe it",
        )
    if spec.name in values:  # a family that is one column, e.g. a bank's own table
        value = values[spec.name]
        if _missing(value):
            return code, f"{spec.name} is missing"
        shown = f"{value:,.4g}" if isinstance(value, int | float | np.floating) else str(value)
        return code, f"{spec.name} = {shown}"
    return code, spec.name.replace("_", " ")


def reason_text(options: list[dict[str, Any]], values: dict[str, Any], family: str) -> str:
    """The text `wording` gives a family with these options (for one customer's values)."""
    return wording(FamilySpec(family, "driver", tuple(options)), values)[1]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and np.isnan(value))


class _Lists(dict):
    """The columns as Python lists, each converted (`tolist`: numbers as floats, labels as they are)
    the first time a text asks for it, so a row's value needs no conversion of its own."""

    def __init__(self, columns: Any):
        super().__init__()
        self._columns = columns

    def __missing__(self, key: str) -> list:
        values = np.asarray(self._columns[key]).tolist()  # KeyError for an unknown placeholder
        self[key] = values
        return values

    def __contains__(self, key: object) -> bool:
        return key in self._columns


class RowView(dict):
    """One row of the columns as a mapping, built only when a text asks for a value."""

    def __init__(self, columns: Any, row: int):
        super().__init__()
        self._columns = columns
        self._row = row

    def __missing__(self, key: str) -> Any:
        value = self._columns[key][self._row]  # KeyError for an unknown placeholder
        value = value.item() if isinstance(value, np.generic) else value
        self[key] = value
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._columns else default

    def __contains__(self, key: object) -> bool:
        return key in self._columns
