"""Requests as the scoring core's arrays, and its results as response models.

Feature rows sent by a caller are checked here against the model's schema before they are
scored: every feature present and no other, numbers where the model reads numbers (not strings
or booleans), known categories, values inside what their definition allows; a value outside what
the model saw in training is scored but flagged with a warning. Errors name the field as the
caller sent it (`rows[2].features.region` for /score, `row.features.region` for /explain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from serving import api_models as m
from serving.model_bundle import ModelBundle
from serving.request_checks import ApiError, safe_name
from serving.scoring import CUSTOMER_COLUMNS, TOP


class Positions:
    """Each stored customer's row, by id: a sorted copy of the ids searched per lookup, so a
    million customers cost two arrays rather than two million Python objects, which a reload
    would build and a swap free beside the requests, holding them up."""

    def __init__(self, ids: np.ndarray):
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    def repeated(self) -> int | None:
        """How many rows the most repeated id has, where some id has more than one; else None."""
        if len(self._sorted) < 2 or not (self._sorted[1:] == self._sorted[:-1]).any():
            return None
        return int(np.unique(self._sorted, return_counts=True)[1].max())

    def get(self, customer_id: int) -> int | None:
        """The row of `customer_id`, None when it is not stored."""
        row = int(self.rows_of([customer_id])[0])
        return None if row < 0 else row

    def rows_of(self, customer_ids: list[int]) -> np.ndarray:
        """The rows of these ids in one search, -1 where an id is not stored."""
        wanted = np.asarray(customer_ids, dtype=np.int64)
        if not len(self._sorted):
            return np.full(len(wanted), -1)
        at = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        return np.where(self._sorted[at] == wanted, self._order[at], -1)


class Coded:
    """A text column of the stored customers (branch, segment, region) as integer codes into its
    few distinct values: indexed like the column, it gives the values, one or an object array,
    None where missing; a million customers hold no Python string each (see `Positions`)."""

    def __init__(self, codes: np.ndarray, values: list[Any]):
        self._codes = codes
        self._values = np.array([*values, None], dtype=object)  # code -1, missing, takes the last

    def __getitem__(self, index: Any) -> Any:
        return self._values[self._codes[index]]


@dataclass(frozen=True)
class Customers:
    """The daily job's latest feature rows, as the champion's feature matrix, and each
    customer's context, in memory: 8 bytes a feature and about 45 more per customer (0.7 KB with
    84 features), so a lookup by id costs no database round trip and no per-request conversion."""

    marker: str | None
    as_of: str | None
    ids: np.ndarray
    position: Positions  # customer id -> row
    x: np.ndarray
    context: dict[str, np.ndarray | Coded]  # CUSTOMER_COLUMNS
    join_date: np.ndarray  # datetime64[ns]; NaT where unknown

    def rows(self, positions: list[int]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(ids, feature matrix, context) of these rows."""
        return (
            self.ids[positions],
            self.x[positions],
            {column: values[positions] for column, values in self.context.items()},
        )


@dataclass(frozen=True)
class Batch:
    """The rows of one request, ready for the scoring core."""

    ids: np.ndarray  # customer ids; rows sent without one get -(position + 1)
    x: np.ndarray
    context: dict[str, np.ndarray]
    order: list[tuple[int, int | None]]  # (index in the request, customer id as sent) per row
    warnings: list[m.ItemWarning]


def by_id(customers: Customers, ids: list[int]) -> tuple[Batch, list[m.ItemError]]:
    """The stored rows of these customers; unknown ids become item errors."""
    first_seen: dict[int, int] = {}
    for i, customer in enumerate(ids):
        if customer in first_seen:
            raise ApiError(400, f"customer_ids[{i}]", f"repeats customer_ids[{first_seen[customer]}]")
        first_seen[customer] = i
    rows = customers.position.rows_of(ids).tolist()
    keys, x, context = customers.rows([r for r in rows if r >= 0])
    order = [(i, c) for i, (c, r) in enumerate(zip(ids, rows, strict=True)) if r >= 0]
    errors = [
        m.ItemError(index=i, customer_id=c, error="unknown customer: not in the latest feature table")
        for i, (c, r) in enumerate(zip(ids, rows, strict=True))
        if r < 0
    ]
    return Batch(keys, x, context, order, []), errors


def by_row(customers: Customers, rows: list[m.FeatureRow], bundle: ModelBundle, prefix: str) -> Batch:
    """Feature rows sent by the caller, checked (module docstring). `prefix`: how the request
    names them, `rows` (a list) or `row` (one). A customer may appear in several rows (what-if
    variants of the same customer)."""
    warnings = []
    for i, row in enumerate(rows):
        name = f"{prefix}[{i}]" if prefix == "rows" else prefix
        warnings += [
            m.ItemWarning(index=i, field=field, warning=text)
            for field, text in check_features(bundle, row.features, name)
        ]
    keys = [r.customer_id if r.customer_id is not None else -(i + 1) for i, r in enumerate(rows)]
    features = pd.DataFrame([r.features for r in rows], index=pd.Index(keys, name="customer_id"))
    prepared = bundle.prepare(features)  # checked above: cannot fail
    context: dict[str, list[Any]] = {column: [] for column in CUSTOMER_COLUMNS}
    for key, row in zip(keys, rows, strict=True):
        stored = customers.position.get(key)
        for column in CUSTOMER_COLUMNS:
            value = getattr(row, column) if stored is None else customers.context[column][stored]
            context[column].append(value)
    return Batch(
        np.array(keys, dtype=np.int64),
        bundle.matrix(prepared),
        {column: np.array(values, dtype=object) for column, values in context.items()},
        [(i, r.customer_id) for i, r in enumerate(rows)],
        warnings,
    )


def check_features(bundle: ModelBundle, features: dict[str, Any], name: str) -> list[tuple[str, str]]:
    """Check one feature row against the model; returns (field, warning) for values outside the
    training range.

    Raises:
        ApiError: an unknown or missing feature, a value of the wrong type, an unknown category,
            a value outside what the feature's definition allows.
    """
    meta = bundle.meta["features"]
    known = set(bundle.feature_names)
    unknown = sorted(set(features) - known)
    if unknown:
        raise ApiError(400, f"{name}.features.{safe_name(unknown[0])}", "not a feature of the model")
    missing = [n for n in bundle.feature_names if n not in features]
    if missing:
        raise ApiError(400, f"{name}.features.{missing[0]}", f"missing ({len(missing)} missing in all)")
    bounds = meta.get("bounds", {})
    ranges = meta.get("ranges", {})
    integers = set(meta.get("integers", ()))
    warnings = []
    for feature in bundle.feature_names:
        value, field = features[feature], f"{name}.features.{feature}"
        if value is None:
            continue
        if feature in bundle.categories:
            levels = bundle.categories[feature]
            if not isinstance(value, str):
                raise ApiError(400, field, "must be a string (a category)")
            text = value.strip().lower() if meta.get("normalise_text") else value
            if text not in levels:
                raise ApiError(400, field, f"unknown category (expected one of {', '.join(levels)})")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, field, "must be a number (a JSON number, not a string or a boolean)")
        if feature in integers and value != int(value):
            raise ApiError(400, field, "must be a whole number (the feature counts something)")
        low, high = bounds.get(feature, (None, None))
        if low is not None and value < low:
            raise ApiError(400, field, f"below {low:g}, the smallest value this feature can take")
        if high is not None and value > high:
            raise ApiError(400, field, f"above {high:g}, the largest value this feature can take")
        seen_low, seen_high = ranges.get(feature, (None, None))
        if (seen_low is not None and value < seen_low) or (seen_high is not None and value > seen_high):
            warnings.append(
                (field, f"outside the training range [{seen_low:g}, {seen_high:g}]: the score extrapolates")
            )
    return warnings


# -- results as response models -------------------------------------------------------------------
def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def reasons_of(row: dict[str, Any]) -> list[m.Reason]:
    """The reasons of a scored row (reason_k_code / _text / _contribution columns)."""
    return [
        m.Reason(
            code=row[f"reason_{k}_code"],
            text=row[f"reason_{k}_text"],
            contribution=float(row[f"reason_{k}_contribution"]),
        )
        for k in range(1, TOP + 1)
        if row.get(f"reason_{k}_code") not in (None, "") and not pd.isna(row.get(f"reason_{k}_code"))
    ]


def customer_score(
    index: int, customer_id: int | None, out: dict[str, np.ndarray], row: int
) -> m.CustomerScore:
    """Row `row` of the scoring core's output as the response item for request index `index`."""
    r = {column: _item(values[row]) for column, values in out.items()}
    action = None
    if r["action"] is not None and not pd.isna(r["action"]):
        action = m.Action(
            code=r["action"],
            channel=r["action_channel"],
            owner=r["action_owner"],
            description=r["action_description"],
            expected_saving=float(r["expected_saving"]),
        )
    return m.CustomerScore(
        index=index,
        customer_id=customer_id,
        churn_probability=float(r["churn_probability"]),
        risk_tier=r["risk_tier"],
        value=_number(r["value"]),
        value_at_risk=_number(r["value_at_risk"]),
        value_tier=r["value_tier"],
        reasons=reasons_of(r),
        evidence=_text(r.get("evidence")),
        churn_type=_text(r.get("churn_type")),
        churn_type_confidence=_number(r.get("churn_type_confidence")),
        next_best_products=[
            m.ProductPropensity(
                product=r[f"next_product_{k}"], propensity=float(r[f"next_product_{k}_propensity"])
            )
            for k in range(1, TOP + 1)
            if r[f"next_product_{k}"] is not None and not pd.isna(r[f"next_product_{k}"])
        ],
        action=action,
        control_group=bool(r["control_group"]),
        contact=bool(r["contact"]),
        contact_rule=str(r["contact_rule"]),
    )


def explain_row(
    bundle: ModelBundle,
    x: np.ndarray,
    record: dict[str, Any],
    version: str,
    request_id: str,
    subject: int | None,
    warnings: list,
) -> m.Explanation:
    """/explain's answer for the one row of `x` (its values `record`, `bundle.row_values`): the
    probability, the reasons (one per family at most), and every feature's SHAP contribution and
    value, the largest first."""
    contributions = bundle.contributions_array(x)
    families = sorted(set(bundle.families.values()))
    reasons = bundle.reasons(x, contributions, top=len(families))[0]
    values = contributions[0]
    listed = sorted(range(len(bundle.feature_names)), key=lambda j: -abs(values[j]))
    return m.Explanation(
        request_id=request_id,
        model_version=version,
        customer_id=subject,
        churn_probability=float(bundle.churn_probability(x)[0]),
        warnings=warnings,
        base_value=float(values[-1]),
        margin=float(values.sum()),
        reasons=[m.Reason(code=r.code, text=r.text, contribution=r.contribution) for r in reasons],
        contributions=[
            m.Contribution(
                feature=bundle.feature_names[j],
                family=bundle.families[bundle.feature_names[j]],
                value=record[bundle.feature_names[j]],
                contribution=float(values[j]),
            )
            for j in listed
        ],
    )


def list_item(r: dict[str, Any]) -> m.RiskListItem:
    """A stored list row as the response item."""
    rank = r.get("list_rank")
    return m.RiskListItem(
        customer_id=int(r["customer_id"]),
        list_rank=None if rank is None or pd.isna(rank) else int(rank),
        churn_probability=float(r["churn_probability"]),
        risk_tier=r["risk_tier"],
        value=_number(r.get("value")),
        value_at_risk=_number(r.get("value_at_risk")),
        expected_saving=_number(r.get("expected_saving")),
        action=r.get("action"),
        action_channel=r.get("action_channel"),
        action_owner=r.get("action_owner"),
        branch_id=r.get("branch_id"),
        segment=r.get("segment"),
        region=r.get("region"),
        reasons=reasons_of(r),
        evidence=_text(r.get("evidence")),
        churn_type=_text(r.get("churn_type")),
        churn_type_confidence=_number(r.get("churn_type_confidence")),
        next_best_products=[
            r[f"next_product_{k}"] for k in range(1, TOP + 1) if r.get(f"next_product_{k}") not in (None, "")
        ],
        contact=bool(r["contact"]),
        contact_rule=r.get("contact_rule"),
    )


def model_info_answer(champion: Any, model_name: str) -> m.ModelInfo:
    """/model-info's answer for the champion being served (`serving.service_state.Champion`)."""
    training = champion.bundle.meta.get("training", {})
    return m.ModelInfo(
        model_name=model_name,
        version=champion.version,
        alias="champion",
        trained_at=training.get("trained_at"),
        training_split={k: str(v) for k, v in training.get("split", {}).items()},
        metrics={k: float(v) for k, v in champion.info["metrics"].items()},
        feature_schema_hash=champion.bundle.schema_hash,
        features=len(champion.bundle.feature_names),
        loaded_at=champion.info["loaded_at"],
    )
