"""The monitoring stage's settings: drift and data-quality checks against the training reference
(composed into the application config by `churn.config`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from churn.frozen import Frozen


class MonitoringConfig(Frozen):
    """Drift and data-quality checks of the scored data against the model's training reference."""

    window_days: int = Field(30, ge=1)
    # Population stability index per column: under 0.1 stable, 0.1-0.2 moderate, over 0.2 drifted.
    psi_threshold: float = Field(0.2, gt=0.0)
    # Alert when this share of the model's features drift...
    max_drifted_share: float = Field(0.3, gt=0.0, le=1.0)
    # ...or when this many of the 10 features that matter most (mean |SHAP| in training) drift.
    max_top_features_drifted: int = Field(2, ge=1, le=10)
    # Alert when any one feature drifts this much over the whole population...
    severe_psi: float = Field(0.5, gt=0.0)
    # ...or one of the 10 most important features this much within one segment or region (small
    # groups and regional competitor campaigns move PSI more than the whole population does).
    segment_severe_psi: float = Field(4.0, gt=0.0)
    # Alert when the predicted churn probability itself drifts (PSI over the threshold).
    alert_on_prediction_drift: bool = True
    # Alert when a feature's share of missing values rises by more than this (absolute).
    max_missing_increase: float = Field(0.1, gt=0.0, le=1.0)
    # Alert when more than this share of a feature's values fall outside the reference range.
    max_out_of_range_share: float = Field(0.05, gt=0.0, le=1.0)
    # Realised performance (lists whose churn horizon has passed): alert when ROC-AUC falls more
    # than this below the training test AUC, or the calibration error exceeds this.
    max_auc_drop: float = Field(0.05, gt=0.0, le=1.0)
    max_calibration_error: float = Field(0.05, gt=0.0, le=1.0)
    # Segment and region views need at least this many scored rows to be judged.
    min_segment_rows: int = Field(200, ge=10)
    experiment: str = "churn-monitoring"
    workspace_dir: str | None = None  # the Evidently workspace; <output_dir>/evidently when unset
    # Features that describe the market rather than the customers (competitor rates move by
    # themselves, in a handful of regional values): their PSI is shown in the report and raises no
    # alert; values beyond the reference's range still do (the data-quality rules).
    market_margin: float = Field(1.0, ge=0.0)  # alert when a rival's gap passes training's largest by this
    exempt_features: tuple[str, ...] = (
        "competitor_gap_latest",
        "competitor_gap_change_3m",
        "competitor_gap_max_6m",
        "saver_competitor_gap",
    )

    @field_validator("exempt_features", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value
