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

# Each stage's own sections live with its code (pure code imports only those); they are composed
# here into the application config, and re-exported for the jobs and the CLI.
from features.settings import DataConfig, FeatureConfig, LabelConfig, Product, SnapshotConfig
from monitoring.settings import MonitoringConfig
from serving.settings import ContactPolicyConfig, ScoringConfig, ServingConfig
from training.settings import BoosterParams, EvaluationConfig, PromotionConfig, TrainingConfig, TuningConfig

__all__ = [
    "BoosterParams",
    "ContactPolicyConfig",
    "DataConfig",
    "EvaluationConfig",
    "FeatureConfig",
    "LabelConfig",
    "MonitoringConfig",
    "PlaybookAction",
    "PlaybookConfig",
    "PlaybookRule",
    "Product",
    "PromotionConfig",
    "ReasonFamily",
    "ReasonText",
    "ScoringConfig",
    "ServingConfig",
    "SnapshotConfig",
    "TrainingConfig",
    "TriggerConfig",
    "TuningConfig",
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
    ("CHURN_LOCAL_PROCESSES", "engine.local_processes"),
)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the key and the problem."""


_Frozen = Frozen


class MlflowConfig(_Frozen):
    tracking_uri: str
    experiment: str = "bank-churn"
    model_name: str = "bank-churn"


class ValueConfig(_Frozen):
    years: float = Field(3.0, gt=0.0)
    discount_rate: float = Field(0.08, ge=0.0, lt=1.0)


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
    # The local engine: partitions run at once, each in a worker process of its own (1: in this
    # process, one at a time). Peak memory grows with it: each process holds one partition.
    local_processes: int = Field(1, ge=1, le=64, strict=False)  # strict=False: CHURN_LOCAL_PROCESSES is text
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
    exploration_share: float = Field(0.02, ge=0.0, le=0.2)
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

    def with_uplift(self, **settings: Any) -> AppConfig:
        """This config with these `uplift:` settings changed (`churn score --ranking`, the
        benchmarks' variants, tests)."""
        return self.model_copy(update={"uplift": self.uplift.model_copy(update=settings)})

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
