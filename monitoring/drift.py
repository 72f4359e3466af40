"""The drift checks of what one model version scored, against its training reference: PSI per
feature and prediction (Evidently's `psi` method), data quality, segment and region views, and
the rival-rate check of the market features."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churn.config import AppConfig
from monitoring.reference import PREDICTION, Alert, Reference
from serving.model_bundle import categoricals_as_text
from serving.request_log import WITHHELD_FEATURES

TOP_FEATURES = 10


@dataclass
class VersionCheck:
    """The checks of the rows one model version scored."""

    version: str
    rows: int
    drift: pd.DataFrame  # per column: psi, drifted
    quality: pd.DataFrame  # per feature: missing shares, out-of-range share, new categories
    segments: dict[str, dict[str, Any]]
    alerts: list[Alert]
    snapshot: Any = field(repr=False)

    def figures(self, config: AppConfig) -> dict[str, Any]:
        features = self.drift.drop(index=PREDICTION, errors="ignore")
        return {
            "rows": self.rows,
            "features_checked": len(features),
            "drifted_features": features.index[features["drifted"]].tolist(),
            "drifted_share": float(features["drifted"].mean()) if len(features) else 0.0,
            "prediction_psi": _psi_of(self.drift, PREDICTION),
            "psi": {c: round(float(v), 4) for c, v in self.drift["psi"].items()},
            "quality": self.quality.round(4).replace({np.nan: None}).to_dict(orient="index"),
            "segments": self.segments,
            "alerts": [a.__dict__ for a in self.alerts],
            "thresholds": config.monitoring.model_dump(),
        }


def evidently_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], threshold: float
) -> Any:
    """Evidently's data-drift report (PSI per column, the same test as `psi_table`) as a snapshot,
    for the HTML page and the Evidently workspace; `columns`: those `psi_table` judged. Building it renders a chart per column, about
    8 s for the default model, so it is built once per monitoring run."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report([DataDriftPreset(columns=columns, method="psi", threshold=threshold)])
    return report.run(current_data=current[columns], reference_data=reference[columns])


def psi_table(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], threshold: float
) -> pd.DataFrame:
    """PSI per column, with Evidently's PSI test (what its data-drift preset runs with
    `method="psi"`; the values are identical) but without building a report. Columns without a
    value on either side are left out (data quality reports them)."""
    from evidently.legacy.calculations.stattests import psi_stat_test
    from evidently.legacy.core import ColumnType

    psi = {}
    for column in columns:
        ref, cur = reference[column].dropna(), current[column].dropna()
        if ref.empty or cur.empty:
            continue
        numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        kind = ColumnType.Numerical if numeric else ColumnType.Categorical
        if not numeric:
            ref, cur = ref.astype(str), cur.astype(str)
        psi[column] = float(psi_stat_test(ref, cur, kind, threshold).drift_score)
    table = pd.DataFrame({"psi": pd.Series(psi, dtype=float)})
    table["drifted"] = table["psi"] >= threshold
    return table


def quality_table(reference: pd.DataFrame, current: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Per feature: missing share in reference and current, the share of current values outside
    the reference's range (numbers), and category values the reference never had."""
    rows = {}
    for name in features:
        ref, cur = reference[name], current[name]
        if name in WITHHELD_FEATURES and "source" in current:  # the API's rows do not record it
            cur = cur[current["source"] != "api"]
        row = {"missing_reference": float(ref.isna().mean()), "missing_current": float(cur.isna().mean())}
        row["missing_increase"] = row["missing_current"] - row["missing_reference"]
        numbers = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        if numbers and ref.notna().any() and cur.notna().any():
            present = cur.dropna()
            row["out_of_range_share"] = float(((present < ref.min()) | (present > ref.max())).mean())
            row["new_categories"] = []
        else:
            row["out_of_range_share"] = np.nan
            row["new_categories"] = sorted(set(cur.dropna().astype(str)) - set(ref.dropna().astype(str)))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def judge(
    drift: pd.DataFrame, quality: pd.DataFrame, top_features: list[str], config: AppConfig
) -> list[Alert]:
    """The alerts these figures raise under the configured thresholds."""
    m = config.monitoring
    alerts = []
    features = drift.drop(index=PREDICTION, errors="ignore")
    drifted = features.index[features["drifted"]].tolist()
    share = len(drifted) / max(len(features), 1)
    by_psi = features.loc[drifted, "psi"].sort_values(ascending=False).index.tolist()
    if share >= m.max_drifted_share:
        alerts.append(
            Alert(
                "drift_share",
                "all features",
                share,
                m.max_drifted_share,
                by_psi,
                f"{share:.0%} of features drifted (PSI >= {m.psi_threshold}): {', '.join(by_psi[:8])}",
            )
        )
    top = [f for f in top_features[:TOP_FEATURES] if f in drifted]
    if len(top) >= m.max_top_features_drifted:
        alerts.append(
            Alert(
                "top_feature_drift",
                "top features",
                float(len(top)),
                float(m.max_top_features_drifted),
                top,
                f"{len(top)} of the {TOP_FEATURES} most important features drifted: "
                + ", ".join(f"{f} (PSI {features.loc[f, 'psi']:.2f})" for f in top),
            )
        )
    severe = features[features["psi"] >= m.severe_psi].sort_values("psi", ascending=False)
    for name, row in severe.iterrows():
        alerts.append(
            Alert(
                "feature_drift",
                str(name),
                float(row["psi"]),
                m.severe_psi,
                [str(name)],
                f"{name} drifted strongly (PSI {row['psi']:.2f})",
            )
        )
    psi = _psi_of(drift, PREDICTION)
    if m.alert_on_prediction_drift and psi is not None and psi >= m.psi_threshold:
        alerts.append(
            Alert(
                "prediction_drift",
                PREDICTION,
                psi,
                m.psi_threshold,
                [],
                f"predicted churn probability drifted (PSI {psi:.2f})",
            )
        )
    for name, row in quality.iterrows():
        if row["missing_increase"] > m.max_missing_increase:
            alerts.append(
                Alert(
                    "missing_values",
                    name,
                    row["missing_increase"],
                    m.max_missing_increase,
                    [name],
                    f"{name}: missing in {row['missing_current']:.0%} of rows (reference {row['missing_reference']:.0%})",
                )
            )
        if (
            row["out_of_range_share"] == row["out_of_range_share"]
            and row["out_of_range_share"] > m.max_out_of_range_share
        ):
            alerts.append(
                Alert(
                    "out_of_range",
                    name,
                    row["out_of_range_share"],
                    m.max_out_of_range_share,
                    [name],
                    f"{name}: {row['out_of_range_share']:.0%} of values outside the reference range",
                )
            )
        if row["new_categories"]:
            alerts.append(
                Alert(
                    "new_category",
                    name,
                    float(len(row["new_categories"])),
                    0.0,
                    [name],
                    f"{name}: values the model never saw: {', '.join(row['new_categories'][:5])}",
                )
            )
    return alerts


def market_alerts(reference: pd.DataFrame, current: pd.DataFrame, config: AppConfig) -> list[Alert]:
    """A competitor gap in some region beyond the largest the model saw in training by more than
    `monitoring.market_margin` points: the market has moved where the model has no experience."""
    column, margin = "competitor_gap_latest", config.monitoring.market_margin
    if column not in current.columns or column not in reference.columns or reference[column].isna().all():
        return []
    seen = float(reference[column].max())
    beyond = current[current[column] > seen + margin]
    if beyond.empty:
        return []
    regions = beyond.groupby("region", observed=True)[column].max().sort_values(ascending=False)
    return [
        Alert(
            "market",
            f"region={region}",
            float(gap),
            seen + margin,
            [column],
            f"region={region}: a competitor rate {gap:.1f} points above ours, beyond the {seen:.1f} seen in "
            "training: the model has no experience of this market",
        )
        for region, gap in regions.items()
    ]


def segment_views(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    top_features: list[str],
    config: AppConfig,
) -> tuple[dict[str, dict[str, Any]], list[Alert]]:
    """Drift per segment and per region (model features, where the model has them), each against
    the reference rows of the same segment or region: a model can decay in one region first."""
    m = config.monitoring
    views, alerts = {}, []
    for column in ("segment", "region"):
        if column not in current.columns or column not in reference.columns:
            continue
        for value, rows in current.groupby(column, observed=True):
            ref = reference[reference[column].astype(str) == str(value)]
            if len(rows) < m.min_segment_rows or len(ref) < m.min_segment_rows:
                continue
            table = psi_table(ref, rows, features, m.psi_threshold).sort_values("psi", ascending=False)
            drifted = table.index[table["drifted"]].tolist()
            share = len(drifted) / max(len(table), 1)
            key = f"{column}={value}"
            severe = [
                f
                for f in drifted
                if f in top_features[:TOP_FEATURES] and table.loc[f, "psi"] >= m.segment_severe_psi
            ]
            views[key] = {
                "rows": len(rows),
                "drifted_share": share,
                "drifted_features": drifted,
                "psi": {f: round(float(table.loc[f, "psi"]), 4) for f in drifted},
            }
            if share >= m.max_drifted_share or severe:
                named = severe or drifted
                alerts.append(
                    Alert(
                        "segment_drift",
                        key,
                        float(table.loc[severe[0], "psi"]) if severe else share,
                        m.segment_severe_psi if severe else m.max_drifted_share,
                        named,
                        f"{key}: "
                        + (
                            ", ".join(f"{f} drifted strongly (PSI {table.loc[f, 'psi']:.2f})" for f in severe)
                            if severe
                            else f"{share:.0%} of features drifted: {', '.join(drifted[:8])}"
                        ),
                    )
                )
    return views, alerts


def check_version(
    reference: Reference, current: pd.DataFrame, config: AppConfig, with_report: bool = True
) -> VersionCheck:
    """Every check of the rows one model version scored, against that version's reference;
    `with_report`: also build Evidently's report (for the page and the workspace)."""
    features = [f for f in reference.features if f in current.columns and f in reference.frame.columns]
    ref = categoricals_as_text(reference.frame)
    cur = categoricals_as_text(current)
    columns = [*features, PREDICTION]
    drift = psi_table(ref, cur, columns, config.monitoring.psi_threshold)
    quality = quality_table(ref, cur, features)
    # the market moves by itself, in a few regional values: no drift alert on its features; a
    # rival's rate well beyond anything the model was trained on is an alert of its own
    exempt = set(config.monitoring.exempt_features)
    judged_features = [f for f in features if f not in exempt]
    alerts = judge(
        drift.drop(index=list(exempt), errors="ignore"),
        quality.drop(index=list(exempt), errors="ignore"),
        [f for f in reference.features if f not in exempt],
        config,
    ) + market_alerts(ref, cur, config)
    batch = cur[cur["source"] == "batch"] if "source" in cur.columns else cur
    segments, segment_alerts = segment_views(ref, batch, judged_features, reference.features, config)
    judged = drift.index.tolist()  # the columns with values on both sides
    snapshot = evidently_report(ref, cur, judged, config.monitoring.psi_threshold) if with_report else None
    return VersionCheck(
        reference.version, len(cur), drift, quality, segments, alerts + segment_alerts, snapshot
    )


def _psi_of(drift: pd.DataFrame, column: str) -> float | None:
    if column not in drift.index or drift.loc[column, "psi"] != drift.loc[column, "psi"]:
        return None
    return float(drift.loc[column, "psi"])
