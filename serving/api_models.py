"""Request and response models of the scoring API (pydantic; the OpenAPI document is built from them).

Every request model forbids unknown fields and NaN or infinity, and requests are validated in
strict JSON mode before they reach the service (`serving.request_checks`): a number sent as a
string, a float or a boolean for an id, an epoch number for a date are refused. A malformed
request is a 400 that names the field, never a 500.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

CustomerId = Annotated[int, Field(ge=1, le=2**62, description="The bank's customer id")]
FeatureValue = Annotated[
    float | Annotated[str, StringConstraints(max_length=64)] | None,
    Field(description="A number, a category, or null for missing"),
]
CHANNELS = ("phone", "branch", "email", "sms", "app")
RiskTier = Literal["high", "medium", "low"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class FeatureRow(_Request):
    """Feature values computed by the caller (or changed for a what-if question)."""

    features: dict[Annotated[str, StringConstraints(max_length=64)], FeatureValue] = Field(
        max_length=1000, description="Feature name -> value; every feature of the model is needed"
    )
    customer_id: CustomerId | None = Field(
        None, description="When given, the customer's stored context and contact history are used"
    )
    segment: Annotated[str, StringConstraints(max_length=32)] | None = Field(
        None, description="Context for a row without a known customer"
    )
    region: Annotated[str, StringConstraints(max_length=32)] | None = None
    branch_id: Annotated[str, StringConstraints(max_length=32)] | None = None
    do_not_contact: bool = False


def _exactly_one_of(*names: str) -> dict:
    """JSON schema for 'exactly one of these fields' (the model validator enforces the same)."""
    return {
        "oneOf": [
            {
                "required": [name],
                "not": {"anyOf": [{"required": [other]} for other in names if other != name]},
            }
            for name in names
        ]
    }


def _no_explicit_null(request: BaseModel, *names: str) -> None:
    """Either/or fields are sent or left out; a null one is a mistake worth naming."""
    for name in names:
        if name in request.model_fields_set and getattr(request, name) is None:
            raise ValueError(f"{name}: null is not allowed; leave the field out")


class ScoreRequest(_Request):
    """Either customer ids (looked up in the latest feature table) or feature rows, not both."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("customer_ids", "rows"))

    customer_ids: list[CustomerId] | None = Field(None, min_length=1, max_length=10_000)
    rows: list[FeatureRow] | None = Field(None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _one_of(self) -> ScoreRequest:
        _no_explicit_null(self, "customer_ids", "rows")
        if (self.customer_ids is None) == (self.rows is None):
            raise ValueError("send either customer_ids or rows")
        return self


class ExplainRequest(_Request):
    """Either a customer id (the stored features) or one feature row, not both."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_of("customer_id", "row"))

    customer_id: CustomerId | None = None
    row: FeatureRow | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ExplainRequest:
        _no_explicit_null(self, "customer_id", "row")
        if (self.customer_id is None) == (self.row is None):
            raise ValueError("send either customer_id or row")
        return self


class ContactOutcomeRequest(_Request):
    """What happened after a retention contact. Sending the same event again is harmless."""

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
    customer_id: CustomerId
    contacted_at: dt.datetime = Field(description="When the contact happened (ISO 8601; UTC if no offset)")
    channel: Literal[CHANNELS]  # type: ignore[valid-type]
    action: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="The playbook action taken, e.g. rate_offer"
    )
    reached: bool
    offer_accepted: bool | None = None
    customer_status: Literal["stayed", "left", "unknown"] = "unknown"

    @model_validator(mode="after")
    def _consistent(self) -> ContactOutcomeRequest:
        if not self.reached and self.offer_accepted:
            raise ValueError("offer_accepted: cannot be true when the customer was not reached")
        return self


class RiskListQuery(_Request):
    """The query parameters of GET /risk-list (unknown ones are refused)."""

    as_of: dt.date | None = Field(None, description="List date; the latest when omitted")
    team: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="Owner team of the action"
    )
    branch: Annotated[str, StringConstraints(max_length=32)] | None = None
    segment: Annotated[str, StringConstraints(max_length=32)] | None = None
    tier: RiskTier | None = None
    contacted_only: bool = Field(True, description="Only the customers planned for contact")
    limit: int = Field(50, ge=1, description="Rows per page, at most `serving.page_size_limit`")
    offset: int = Field(0, ge=0, le=10_000_000)


# -- responses -----------------------------------------------------------------------------------
class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer: what is wrong, naming the field, never echoing a value."""

    error: str = Field(description="'<field>: <what is wrong>', or what went wrong")
    field: str | None = Field(description="The request field at fault (e.g. rows[0].features.region)")


class Reason(BaseModel):
    code: str = Field(
        description="The cause (features/causes.py), e.g. COMPLAINT, COMPETITOR_RATE, MOVED_AWAY"
    )
    text: str
    contribution: float = Field(description="Summed SHAP contribution of the family, log-odds")


class ProductPropensity(BaseModel):
    product: str
    propensity: float


class Action(BaseModel):
    code: str
    channel: str
    owner: str
    description: str
    expected_saving: float


class CustomerScore(BaseModel):
    index: int = Field(description="Position in the request")
    customer_id: int | None
    churn_probability: float
    risk_tier: RiskTier
    value: float | None
    value_at_risk: float | None
    value_tier: Literal["high", "medium", "low"]
    reasons: list[Reason] = Field(
        description="Top reasons: the causes (drivers) behind the risk; empty below the reporting threshold "
        "(unless the uplift ranking's pool takes the customer in: uplift.candidate_saving)"
    )
    evidence: str | None = Field(description="What shows the customer leaving (symptoms), beside the reasons")
    churn_type: Literal["natural", "competitive", "service_failure", "unclear"] | None = Field(
        description="The kind of churn the drivers point to; None where the reasons are not explained"
    )
    churn_type_confidence: float | None = Field(description="Share of the driver contributions for that kind")
    next_best_products: list[ProductPropensity]
    action: Action | None
    control_group: bool
    contact: bool
    contact_rule: str


class ItemError(BaseModel):
    index: int
    customer_id: int | None
    error: str


class ItemWarning(BaseModel):
    """A feature row the model can score but not vouch for (a value outside what it was trained on)."""

    index: int
    field: str
    warning: str


class ScoreResponse(BaseModel):
    request_id: str
    model_version: str
    features_as_of: str | None = Field(description="Date of the stored features used for ids")
    scores: list[CustomerScore]
    errors: list[ItemError]
    warnings: list[ItemWarning] = Field(default_factory=list)


class Contribution(BaseModel):
    feature: str
    family: str
    value: float | str | None
    contribution: float


class Explanation(BaseModel):
    request_id: str
    model_version: str
    customer_id: int | None
    churn_probability: float
    warnings: list[ItemWarning] = Field(default_factory=list)
    base_value: float = Field(description="The model's expected log-odds")
    margin: float = Field(description="base_value + sum of contributions (raw log-odds)")
    reasons: list[Reason]
    contributions: list[Contribution] = Field(description="Every feature, largest |contribution| first")


class OutcomeRecorded(BaseModel):
    event_id: str
    status: Literal["recorded", "duplicate"]


class RiskListItem(BaseModel):
    customer_id: int
    list_rank: int | None
    churn_probability: float
    risk_tier: str
    value: float | None
    value_at_risk: float | None
    expected_saving: float | None
    action: str | None
    action_channel: str | None
    action_owner: str | None
    branch_id: str | None
    segment: str | None
    region: str | None
    reasons: list[Reason]
    evidence: str | None
    churn_type: str | None
    churn_type_confidence: float | None
    next_best_products: list[str]
    contact: bool
    contact_rule: str | None


class RiskListPage(BaseModel):
    as_of: str
    model_version: str | None
    total: int
    limit: int
    offset: int
    items: list[RiskListItem]


class ModelInfo(BaseModel):
    model_name: str
    version: str
    alias: str
    trained_at: str | None
    training_split: dict[str, str]
    metrics: dict[str, float]
    feature_schema_hash: str
    features: int
    loaded_at: str
