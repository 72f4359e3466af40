"""Configuration of what the retention team is told and asked to do: reasons, playbook, triggers.

- `reasons`: for each feature family, its role and texts. Drivers are what a reason names (a
  cause the bank can act on or must know about, with its code from `features.causes`); symptoms
  (balances falling, money leaving) are shown as evidence beside them; context families are never
  a reason (who the customer is, what they hold, the bank's own past contacts).
- `playbook`: actions with a cost and an expected effect, rules on the kind of churn, the first
  reason, tiers and segment (first match wins), and each team's daily capacity.
- `triggers`: the event lists beside the risk ranking (a deposit about to mature, a salary that
  stopped, an application, a complaint left open too long).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from churn.frozen import Frozen
from features.causes import CAUSE_CODES, CHURN_TYPES

Role = Literal["driver", "symptom", "context"]


class ReasonText(Frozen):
    """One wording of a family's reason: used when `when` (a feature) is above 0, or always."""

    text: str
    when: str | None = None
    code: str | None = None  # drivers: the cause this wording names

    @field_validator("code")
    @classmethod
    def _known_cause(cls, value: str | None) -> str | None:
        if value is not None and value not in CAUSE_CODES:
            raise ValueError(f"{value!r} is not a cause code ({', '.join(CAUSE_CODES)})")
        return value


class ReasonFamily(Frozen):
    role: Role
    texts: tuple[ReasonText, ...]

    @field_validator("texts", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _codes_for_drivers(self) -> ReasonFamily:
        if not self.texts:
            raise ValueError("texts: at least one")
        coded = [t.code is not None for t in self.texts]
        if self.role == "driver" and not all(coded):
            raise ValueError("texts: every text of a driver family names its cause (code)")
        if self.role != "driver" and any(coded):
            raise ValueError(f"texts: a {self.role} family names no cause (no code)")
        return self


class PlaybookAction(Frozen):
    channel: str
    owner: str
    cost: float = Field(ge=0.0)
    effect: float = Field(gt=0.0, le=1.0)
    description: str


class PlaybookRule(Frozen):
    """A rule matches when all its conditions hold; the first matching rule decides."""

    action: str
    churn_type: Literal["natural", "competitive", "service_failure", "unclear"] | None = None
    reason: str | None = None  # the first reason's code
    any_reason: str | None = None  # any of the top reasons' codes
    risk_tier: Literal["high", "medium", "low"] | None = None
    value_tier: Literal["high", "medium", "low"] | None = None
    segment: str | None = None


class PlaybookConfig(Frozen):
    actions: dict[str, PlaybookAction]
    rules: tuple[PlaybookRule, ...]
    capacity: dict[str, int] = Field(default_factory=dict)
    per_branch: dict[str, int] = Field(default_factory=dict)

    @field_validator("rules", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> PlaybookConfig:
        for k, rule in enumerate(self.rules):
            if rule.action not in self.actions:
                raise ValueError(f"rules[{k}].action: unknown action {rule.action!r}")
        if not self.rules or any(
            v is not None for v in self.rules[-1].model_dump(exclude={"action"}).values()
        ):
            raise ValueError("rules: the last rule must have no conditions, so every customer gets an action")
        owners = {a.owner for a in self.actions.values()}
        missing = owners - set(self.capacity) - set(self.per_branch)
        if missing:
            raise ValueError(f"capacity: no daily capacity for team(s) {', '.join(sorted(missing))}")
        return self


class Bound(Frozen):
    below: float | None = None  # the feature's value must be under this...
    above: float | None = None  # ...and over this

    @model_validator(mode="after")
    def _a_bound(self) -> Bound:
        if self.below is None and self.above is None:
            raise ValueError("give `below`, `above` or both")
        return self


class Trigger(Frozen):
    """One event list: who it takes (bounds on features, all of which must hold) and the action."""

    description: str
    when: dict[str, Bound] = Field(min_length=1)
    action: str


class TriggerConfig(Frozen):
    """Daily event lists beside the risk ranking, under the same contact policy and one contact
    budget per customer across every list."""

    lists: dict[str, Trigger] = Field(default_factory=dict)
    # a customer on today's lists is given at most one contact (the risk list first, then the
    # trigger lists in this order); the contact policy's gaps and limits apply to all of them


class UpliftParams(Frozen):
    """The uplift outcome model's LightGBM settings: small trees, since the randomised rows are few."""

    num_leaves: int = Field(7, ge=2)
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    num_boost_round: int = Field(300, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    min_child_samples: int = Field(40, ge=1)
    feature_fraction: float = Field(0.8, gt=0.0, le=1.0)
    lambda_l2: float = Field(5.0, ge=0.0)


class UpliftConfig(Frozen):
    """Learned uplift per action from the bank's randomised campaigns (`training/uplift.py`), and
    how the list uses it."""

    enabled: bool = True
    # uplift: rank by P(churn) x value x learned uplift(action, customer) - cost, the action by
    # `choose`; probability: the playbook's action and P(churn) x value x effect - cost;
    # auto: uplift when the uplift models' held-out Qini interval is above zero, else probability
    ranking: Literal["auto", "uplift", "probability"] = "auto"
    # in uplift mode: `playbook` keeps the playbook's action (chosen by kind and cause) and ranks and
    # excludes by its learned uplift; `best` takes each customer's best allowed action by learned
    # uplift, which on four simulated banks chose worse than the cause did (docs/uplift-benchmarks.md)
    choose: Literal["best", "playbook"] = "playbook"
    # with `choose: playbook`, what the playbook's action is valued by: `auto` (the default), `pooled`
    # where the pooled model's own cross-fitted Qini interval is above zero, `per_action` otherwise
    # (`serving.actions.playbook_effect_mode`); `pooled`, one
    # effect of "the action the playbook chooses for this customer", fitted on the campaign contacts
    # whose action was the playbook's choice for the customer that month (the campaigns mixed
    # actions at random, so most contacts did not fit the cause); `per_action`: any contact's effect
    # plus the action's own (every contact of the action, fitting or not). `best` always uses the
    # latter (docs/uplift-benchmarks.md). The pooled model assumes each campaign drew its contacts'
    # actions at random, whatever the customer (the propensity is counted per group and choice); a
    # bank whose campaigns chose actions by rule should use per_action
    playbook_effect: Literal["auto", "pooled", "per_action"] = "auto"
    # where the model of the playbook's choice values the list: each chosen action's own offset
    # on it, a constant learned from that action's fitting contacts and shrunk by empirical Bayes
    # (as far as the actions differ beyond their noise), so that a weak action is not valued like
    # a strong one; false: the one shared effect for every action (docs/uplift-benchmarks.md)
    playbook_offsets: bool = True
    # the share of the customers a month's exploration could have drawn and did not, taken as
    # controls beside the campaigns' own control groups (0: the campaigns' controls alone)
    not_drawn_share: float = Field(0.0, ge=0.0, le=1.0)
    # campaigns whose customers were drawn at random (exploration), by name pattern; every other
    # campaign chose its customers by the bank's own risk view
    exploration_campaigns: str = "EXP-*"
    min_arm_rows: int = Field(100, ge=10)  # an action's model needs this many randomised rows
    prior_events: float = Field(100.0, gt=0.0)  # churners at which learned and playbook weigh the same
    test_months: int = Field(3, ge=1)  # the latest campaign months, held out for the Qini figures
    bootstrap: int = Field(200, ge=10)  # resamples for the Qini intervals
    # the effect models' penalty: ridge shrinks every feature's weight, lasso keeps only the
    # features whose weight the R-loss supports (both chosen by cross-validation)
    effect_penalty: Literal["ridge", "lasso"] = "ridge"
    # the feature families that effect models on the features read (README, Features): with
    # `effect_input: features`, and where a take-up input falls back to the features for want of
    # recorded outcomes; empty: every feature. Fewer,
    # chosen for what makes a contact work (who the customer is, how they bank, what drives them),
    # cost the R-loss less variance than the churn model's whole view
    effect_families: tuple[str, ...] = Field((), strict=False)  # a YAML list
    # what the effect models read: `take_up` (the default), the take-up score alone (P(offer
    # accepted | reached), cross-fitted): the recorded outcomes are a far denser signal of who a
    # contact moves than the churn it changes; or `features` (those of `effect_families`). Chosen
    # with take_up_floor 0.5 on fresh banks (docs/uplift-benchmarks.md)
    effect_input: Literal["features", "take_up"] = "take_up"  # take_up: effect_families unused
    # a customer whose best action is expected to raise their churn by more than this (probability
    # points) is a predicted sleeping dog and is not contacted
    sleeping_dog_harm: float = Field(0.002, ge=0.0)
    # in uplift mode, customers whose predicted take-up (P(offer accepted | reached), learned from
    # the campaigns' recorded outcomes) is among the lowest this share of the customers at risk
    # are not contacted ("unlikely to respond"): who declines is who a contact does not move, the
    # sleeping dogs among them (docs/uplift.md). 0: off. At most 0.9. 0.7 since a test written
    # before its two fresh banks (docs/preregistered/2026-12-06-floor-second-test.md); 0.5 before
    take_up_floor: float = Field(0.7, ge=0.0, le=0.9)
    # in uplift mode, each contact's expected saving is weighed by (predicted take-up / the median
    # take-up of the customers at risk) ** this, at most 2: softer than the floor, a valuable
    # customer who is unlikely to respond can still be contacted. The list's `expected_saving` (and
    # the summary's total) is then the weighted figure, not money the simulation would confirm.
    # 0: off. At most 3
    take_up_weight: float = Field(0.0, ge=0.0, le=3.0)
    # in uplift mode the list also considers customers below the reporting threshold whose best
    # action is expected to save at least this much (value x learned uplift - cost): a valuable
    # customer at moderate risk who responds can be worth more than a risky one who does not; they
    # are explained (SHAP) like those above it. null: only the reporting threshold's customers
    candidate_saving: float | None = Field(25.0, ge=0.0)
    # the actions a customer may get in uplift mode, by kind of churn (a service failure never gets
    # a rate offer, natural churn no retention spend); `unclear` and undiagnosed: every action
    allowed: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    params: UpliftParams = UpliftParams()  # the outcome model's settings (P(churn) on the campaigns' rows)

    @field_validator("allowed", mode="before")
    @classmethod
    def _lists_to_tuples(cls, value: Any) -> Any:
        return {k: tuple(v) for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _known_kinds(self) -> UpliftConfig:
        unknown = set(self.allowed) - set(CHURN_TYPES)
        if unknown:
            raise ValueError(
                f"allowed: {', '.join(sorted(unknown))} is not a kind of churn ({', '.join(CHURN_TYPES)})"
            )
        return self


class DeskConfig(Frozen):
    """The retention desk (`churn desk`, `serving/desk`): where it listens and how it keeps sessions.
    Users and their password hashes live in `users_file`; the session-signing key is a secret."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    users_file: str | None = None  # <output_dir>/desk_users.json when unset
    session_hours: float = Field(8.0, gt=0.0, le=24.0)  # a login lasts a working day
    page_size: int = Field(50, ge=1, le=1000)  # rows per page of the list
    # behind TLS (production): the session cookie travels over HTTPS only
    secure_cookies: bool = False


__all__ = [
    "CHURN_TYPES",
    "DeskConfig",
    "UpliftConfig",
    "UpliftParams",
    "PlaybookAction",
    "PlaybookConfig",
    "PlaybookRule",
    "ReasonFamily",
    "ReasonText",
    "Role",
    "Trigger",
    "TriggerConfig",
]
