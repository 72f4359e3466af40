"""The training stage's settings: booster parameters, the hyperparameter search, evaluation and
promotion (composed into the application config by `churn.config`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from churn.frozen import Frozen


class BoosterParams(Frozen):
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


class TuningConfig(Frozen):
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


class TrainingConfig(Frozen):
    validation_snapshots: int = Field(2, ge=1)
    monotone_increasing: tuple[str, ...] = ()

    @field_validator("monotone_increasing", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    churn: BoosterParams = BoosterParams()
    # The reasons' model (drivers and context, no symptoms): None trains it with `churn`'s settings.
    # Its own, so that the churn model can be kept compact for SHAP without moving the reasons.
    drivers: BoosterParams | None = None
    next_product: BoosterParams = BoosterParams()
    seed: int = 42
    tuning: TuningConfig = TuningConfig()

    @property
    def driver_params(self) -> BoosterParams:
        """The reasons' model's booster settings: `drivers`, or the churn model's when unset."""
        return self.drivers if self.drivers is not None else self.churn


class EvaluationConfig(Frozen):
    contact_capacity: int = Field(100, ge=1)
    top_shares: tuple[float, ...] = (0.05, 0.10, 0.20)

    @field_validator("top_shares", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class PromotionConfig(Frozen):
    min_gain: dict[str, float] = Field(default_factory=lambda: {"roc_auc": 0.0, "net_saving": 0.0})
    max_ece: float = Field(0.05, gt=0.0)
    max_segment_auc_drop: float = Field(0.05, ge=0.0)
    min_segment_positives: int = Field(5, ge=1)
    save_rate: float = Field(0.25, ge=0.0, le=1.0)
    contact_cost: float = Field(30.0, ge=0.0)
