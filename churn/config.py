"""Configuration schema, validated once at the entry point into frozen pydantic models."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from churn.frozen import Frozen
from churn.retention_config import (  # the sections that decide who gets which action
    DeskConfig,
    PlaybookAction,
    PlaybookConfig,
    PlaybookRule,
    ReasonFamily,
    ReasonText,
    TriggerConfig,
    UpliftConfig,
)

__all__ = [
    "PlaybookAction",
    "PlaybookConfig",
    "PlaybookRule",
    "ReasonFamily",
    "ReasonText",
    "TriggerConfig",
    "UpliftConfig",
]

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"

# Environment variables that override locations, as (variable, dotted config key).
ENV_OVERRIDES: tuple[tuple[str, str], ...] = (
    ("CHURN_DATA_SOURCE", "data.source"),
    ("CHURN_OUTPUT_DIR", "output_dir"),
    ("CHURN_DATABASE_URL", "database_url"),
    ("MLFLOW_TRACKING_URI", "mlflow.tracking_uri"),
    ("CHURN_SECRETS_FILE", "serving.secrets_file"),
    ("CHURN_ENGINE", "engine.kind"),
    ("CHURN_DASK_SCHEDULER", "engine.scheduler"),
)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key and the problem."""


_Frozen = Frozen


class DataConfig(_Frozen):
    source: str = Field(description="Directory of Parquet/CSV tables, or a SQLAlchemy URL.")
    extract_date: dt.date | None = None
    max_reject_share: float = Field(0.05, ge=0.0, le=1.0)
    # No date the product accepts (a table's, an API request's) may lie before this day: older
    # ones are data errors, and dates before 1677 cannot even be held as nanosecond timestamps.
    earliest_date: dt.date = dt.date(1900, 1, 1)

    def resolved_extract_date(self) -> dt.date:
        """The date after which event dates count as 'in the future of the data'."""
        return self.extract_date or dt.date.today()


class MlflowConfig(_Frozen):
    tracking_uri: str
    experiment: str = "bank-churn"
    model_name: str = "bank-churn"


class Product(_Frozen):
    name: str
    kind: Literal["deposit", "investment", "credit", "loan", "insurance"]
    balance_margin: float = Field(ge=0.0, le=1.0)
    annual_fee_margin: float = Field(ge=0.0)


class FeatureConfig(_Frozen):
    windows_days: tuple[int, ...] = (30, 90, 180)
    large_outflow_share: float = Field(0.25, gt=0.0, le=1.0)
    salary_gap_days: int = Field(45, gt=0)
    maturity_window_days: int = Field(60, gt=0)

    @field_validator("windows_days", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("windows_days")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w <= 0 for w in value) or list(value) != sorted(set(value)):
            raise ValueError("must be a non-empty, increasing list of positive day counts")
        return value


class LabelConfig(_Frozen):
    horizon_days: int = Field(90, gt=0)
    drain_ratio: float = Field(0.2, gt=0.0, lt=1.0)
    stay_months: int = Field(2, ge=0)
    min_reference_assets: float = Field(500.0, ge=0.0)


class SnapshotConfig(_Frozen):
    count: int = Field(12, ge=1)


class BoosterParams(_Frozen):
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(5, ge=-1)
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    num_boost_round: int = Field(600, ge=1)
    early_stopping_rounds: int = Field(60, ge=1)
    min_child_samples: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0.0, le=1.0)
    bagging_fraction: float = Field(0.8, gt=0.0, le=1.0)
    lambda_l2: float = Field(1.0, ge=0.0)
    # LightGBM's own defaults; the hyperparameter search (`training.tuning`) may set them.
    lambda_l1: float = Field(0.0, ge=0.0)
    cat_smooth: float = Field(10.0, ge=0.0)
    cat_l2: float = Field(10.0, ge=0.0)
    min_data_per_group: int = Field(100, ge=1)
    zero_as_missing: bool = False
    # Re-weighting positives inflates every probability; 1.0 (none) unless the search may change it.
    scale_pos_weight: float = Field(1.0, gt=0.0)


class TuningConfig(_Frozen):
    """The churn model's hyperparameter search (`churn train --tune`), under an explanation budget."""

    enabled: bool = False
    objective: Literal["log_loss", "roc_auc"] = "log_loss"
    # Budgets: the search stops at whichever comes first (a running trial finishes).
    minutes: float = Field(10.0, gt=0.0)
    trials: int = Field(100, ge=1)
    # Explanation budget: exact TreeSHAP costs about trees x leaves x depth^2. Every trial's
    # boosting rounds are capped so that trees x num_leaves <= this ceiling...
    max_tree_leaves: int = Field(4000, ge=2)
    # ...and among trials whose validation ROC-AUC is within this of the best trial's (with the
    # log-loss objective: and whose log-loss is within `log_loss_tolerance` of its, relative), the
    # one with the fewest trees x leaves is chosen (both 0: the best trial by the objective).
    auc_tolerance: float = Field(0.002, ge=0.0, lt=0.5)
    log_loss_tolerance: float = Field(0.005, ge=0.0, lt=1.0)
    max_depth: int = Field(8, ge=2, le=16)
    pruning: bool = True
    # Stratified folds over training and validation rows of a table brought without snapshots
    # (out-of-time data keeps its one validation period).
    folds: int = Field(3, ge=2, le=10)
    # Off by default: the list needs true probabilities; calibration would have to undo it.
    search_scale_pos_weight: bool = False


class TrainingConfig(_Frozen):
    validation_snapshots: int = Field(2, ge=1)
    monotone_increasing: tuple[str, ...] = ()

    @field_validator("monotone_increasing", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    churn: BoosterParams = BoosterParams()
    next_product: BoosterParams = BoosterParams()
    seed: int = 42
    tuning: TuningConfig = TuningConfig()


class EvaluationConfig(_Frozen):
    contact_capacity: int = Field(100, ge=1)
    top_shares: tuple[float, ...] = (0.05, 0.10, 0.20)

    @field_validator("top_shares", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class ValueConfig(_Frozen):
    years: float = Field(3.0, gt=0.0)
    discount_rate: float = Field(0.08, ge=0.0, lt=1.0)


class PromotionConfig(_Frozen):
    min_gain: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.0, "net_saving": 0.0})
    max_ece: float = Field(0.05, gt=0.0)
    max_segment_auc_drop: float = Field(0.05, ge=0.0)
    min_segment_positives: int = Field(5, ge=1)
    save_rate: float = Field(0.25, ge=0.0, le=1.0)
    contact_cost: float = Field(30.0, ge=0.0)


class ScoringConfig(_Frozen):
    tiers: dict[Literal["high", "medium"], float] = Field(
        default_factory=lambda: {"high": 0.15, "medium": 0.05}
    )
    reporting_threshold: float = Field(0.05, ge=0.0, le=1.0)
    value_tiers: dict[Literal["high", "medium"], float] = Field(
        default_factory=lambda: {"high": 20000.0, "medium": 5000.0}
    )
    # The kind of churn is "unclear" when its causes hold less than this share of the driver
    # contributions, or when the drivers add up to less than this many log-odds.
    min_type_share: float = Field(0.5, ge=0.0, le=1.0)
    min_driver_logit: float = Field(0.1, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> ScoringConfig:
        for name, tiers in (("tiers", self.tiers), ("value_tiers", self.value_tiers)):
            if set(tiers) != {"high", "medium"} or tiers["high"] < tiers["medium"]:
                raise ValueError(f"{name} needs 'high' >= 'medium'")
        return self


class ContactPolicyConfig(_Frozen):
    min_days_between_contacts: int = Field(30, ge=0)
    max_contacts_per_quarter: int = Field(2, ge=0)
    control_group_share: float = Field(0.10, ge=0.0, lt=1.0)
    control_group_key: str = Field("retention-control", min_length=1)


class ServingConfig(_Frozen):
    """The scoring API (BentoML). Secrets (API keys, the pseudonymisation key) are never in the
    config: they come from the environment or the `secrets_file`."""

    port: int = Field(3000, ge=1, le=65535)
    max_batch: int = Field(100, ge=1, le=10_000)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    page_size_limit: int = Field(500, ge=1)
    reload_seconds: float = Field(30.0, ge=0.0)
    secrets_file: str = "outputs/secrets.json"
    log_flush_seconds: float = Field(1.0, gt=0.0)
    log_batch_size: int = Field(500, ge=1)
    # A recorded contact may be dated at most this far after now (clocks of CRM systems differ).
    clock_tolerance_minutes: float = Field(5.0, ge=0.0, le=1440.0)
    # Requests per second each API key may send to one worker (a token bucket), and the burst.
    rate_limit_per_second: float = Field(50.0, gt=0.0)
    rate_limit_burst: int = Field(100, ge=1)


class MonitoringConfig(_Frozen):
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


class RetentionDays(_Frozen):
    """How many days each kind of customer record is kept (`churn purge --expired`, and the
    daily job, delete what is older)."""

    prediction_log: int = Field(400, ge=1)  # monitoring needs a window plus the churn horizon
    access_log: int = Field(730, ge=1)  # who read whom: kept longer, for audits
    risk_lists: int = Field(400, ge=1)  # the daily lists, their files and database rows
    contact_outcomes: int = Field(1095, ge=1)  # outcomes recorded through the API


class PrivacyConfig(_Frozen):
    retention_days: RetentionDays = RetentionDays()


class EngineConfig(_Frozen):
    """Where features, training and the daily list run: in this process on pandas (`local`), or
    on a Dask cluster (`dask`), one customer partition per task."""

    kind: Literal["local", "dask"] = "local"
    # An existing cluster's scheduler (tcp://host:8786); None starts a LocalCluster on this machine.
    scheduler: str | None = None
    # The LocalCluster: worker processes, threads per worker, memory limit per worker ("4GiB", "auto").
    workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = "auto"
    # Customers per partition when a flat source is partitioned (`churn partition`, or the dask
    # engine given a flat directory); each task holds one partition's raw rows in memory.
    partition_customers: int = Field(50_000, ge=1)
    # Where the dask engine writes a flat source partitioned by customer; <output_dir>/partitioned when unset.
    partitioned_dir: str | None = None
    # Rows per database insert batch when the dask engine writes the daily list.
    db_batch_rows: int = Field(50_000, ge=1)
    # Training on the dask engine gathers samples of at most this many rows to the client (the
    # logistic baseline, SHAP summaries, plots, the monitoring reference).
    client_sample_rows: int = Field(200_000, ge=1000)


class SourceTableConfig(_Frozen):
    """A customer-level table the bank already has, with a churn flag (bring your own table)."""

    table: str
    id_column: str
    label_column: str
    positive_label: str | int | float | bool = 1
    snapshot_column: str | None = None
    drop_columns: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    test_share: float = Field(0.2, gt=0.0, lt=0.5)
    validation_share: float = Field(0.2, gt=0.0, lt=0.5)
    min_positives: int = Field(20, ge=2)

    @field_validator("drop_columns", "categorical", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class GeneratorConfig(_Frozen):
    customers: int = Field(2500, ge=10)
    months: int = Field(24, ge=6)
    seed: int = 20261122
    start: dt.date = dt.date(2024, 11, 1)
    activity: float = Field(1.0, gt=0.0)
    churn_type_shares: dict[Literal["service_failure", "competitive", "natural"], float] = Field(
        default_factory=lambda: {"service_failure": 0.44, "competitive": 0.28, "natural": 0.28}
    )

    @field_validator("churn_type_shares")
    @classmethod
    def _shares(cls, value: dict[str, float]) -> dict[str, float]:
        if any(v < 0 for v in value.values()) or not sum(value.values()):
            raise ValueError("shares must not be negative and must not all be 0")
        return value

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError("must be the first day of a month")
        return value


class AppConfig(_Frozen):
    data: DataConfig
    output_dir: str = "outputs"
    database_url: str = "sqlite:///outputs/churn.db"
    mlflow: MlflowConfig
    products: dict[str, Product]
    features: FeatureConfig = FeatureConfig()
    labels: LabelConfig = LabelConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    value: ValueConfig = ValueConfig()
    promotion: PromotionConfig = PromotionConfig()
    scoring: ScoringConfig = ScoringConfig()
    contact_policy: ContactPolicyConfig = ContactPolicyConfig()
    playbook: PlaybookConfig | None = None
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    engine: EngineConfig = EngineConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    reasons: dict[str, ReasonFamily] = Field(default_factory=dict)
    triggers: TriggerConfig = TriggerConfig()
    uplift: UpliftConfig = UpliftConfig()
    desk: DeskConfig = DeskConfig()
    generator: GeneratorConfig = GeneratorConfig()
    source: SourceTableConfig | None = None

    @model_validator(mode="after")
    def _catalogue_has_current_account(self) -> AppConfig:
        if "current_account" not in self.products:
            raise ValueError("products must include 'current_account' (every customer holds one)")
        actions = self.playbook.actions if self.playbook else {}
        for kind, allowed in self.uplift.allowed.items():
            for action in allowed:
                if action not in actions:
                    raise ValueError(
                        f"uplift.allowed.{kind}: unknown action {action!r} (not in the playbook)"
                    )
        for name, trigger in self.triggers.lists.items():
            if trigger.action not in actions:
                raise ValueError(f"triggers.lists.{name}.action: {trigger.action!r} is not a playbook action")
        return self

    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)

    @property
    def action_codes(self) -> tuple[str, ...] | None:
        """The playbook's actions (what `contacts.action` may say); None without a playbook."""
        return tuple(self.playbook.actions) if self.playbook else None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _deep_merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def _set_dotted(raw: dict[str, Any], dotted: str, value: str) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"invalid configuration {path}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = (
            "unknown key (not part of the configuration schema)"
            if item["type"] == "extra_forbidden"
            else item["msg"]
        )
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> AppConfig:
    """Read a YAML config, apply environment overrides, and validate it.

    Args:
        path: YAML file; the packaged `configs/default.yaml` when None.
        environ: environment to read overrides from; `os.environ` when None.

    Returns:
        The frozen, validated configuration.

    Raises:
        ConfigError: unreadable YAML, an unknown key or an invalid value (the message names the key).
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    environ = os.environ if environ is None else environ
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration {path} must be a mapping of keys to values")
    if path.resolve() != DEFAULT_CONFIG.resolve():
        # a user's file only says what differs from the defaults
        raw = _deep_merge(yaml.safe_load(DEFAULT_CONFIG.read_text()), raw)
    for variable, dotted in ENV_OVERRIDES:
        if environ.get(variable):
            _set_dotted(raw, dotted, environ[variable])
    try:
        return AppConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None
