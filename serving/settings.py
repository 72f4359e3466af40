"""The serving stage's settings: score tiers, the contact policy and the scoring API (composed
into the application config by `churn.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from churn.frozen import Frozen


class ScoringConfig(Frozen):
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


class ContactPolicyConfig(Frozen):
    min_days_between_contacts: int = Field(30, ge=0)
    max_contacts_per_quarter: int = Field(2, ge=0)
    control_group_share: float = Field(0.10, ge=0.0, lt=1.0)
    control_group_key: str = Field("retention-control", min_length=1)


class ServingConfig(Frozen):
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
