"""Recording what happened after a contact: the one path of `POST /contact-outcome` and the desk's
outcome form, so both apply the same rules (`ContactOutcomeRequest`'s checks, the playbook's
actions, the dates a contact can have) and the same idempotent write (`ServingStore.record_outcome`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from serving.api_models import ContactOutcomeRequest
from serving.request_checks import ApiError
from serving.store import Outcome, OutcomeConflict, ServingStore, contact_window


def contact_time(contacted_at: dt.datetime, joined: Any, now: pd.Timestamp, config: Any) -> pd.Timestamp:
    """`contacted_at` as naive UTC, if it lies where a contact can: not before the customer
    joined (nor `data.earliest_date`), not after now plus the clock tolerance. Anything else
    would be counted by the contact policy for ever, or break the jobs that read it."""
    aware = contacted_at if contacted_at.tzinfo else contacted_at.replace(tzinfo=dt.UTC)  # UTC if no offset
    tolerance = config.serving.clock_tolerance_minutes
    earliest, latest = contact_window(config.data.earliest_date, tolerance, now)
    if aware > latest.to_pydatetime().replace(tzinfo=dt.UTC):
        raise ApiError(400, "contacted_at", f"in the future (more than {tolerance:g} minutes after now)")
    if aware < earliest.to_pydatetime().replace(tzinfo=dt.UTC):  # compared before converting: no overflow
        raise ApiError(400, "contacted_at", f"before the earliest allowed date {earliest:%Y-%m-%d}")
    when = pd.Timestamp(aware.astimezone(dt.UTC).replace(tzinfo=None))
    if joined is not None and not pd.isna(joined) and when < pd.Timestamp(np.datetime64(joined)).normalize():
        raise ApiError(400, "contacted_at", "before the customer joined the bank")
    return when


def record_contact_outcome(
    store: ServingStore, config: Any, request: ContactOutcomeRequest, joined: Any, now: pd.Timestamp
) -> bool:
    """Check and write one outcome; True when recorded now, False when the same event was already
    recorded the same way. Raises ApiError (400 on a bad field, 409 when the event id was used for
    different content)."""
    when = contact_time(request.contacted_at, joined, now, config)
    actions = config.playbook.actions if config.playbook else {}
    if request.action is not None and request.action not in actions:
        raise ApiError(400, "action", f"not one of {', '.join(actions)}")
    outcome = Outcome(
        request.event_id,
        request.customer_id,
        when,
        request.channel,
        request.action,
        request.reached,
        request.offer_accepted,
        request.customer_status,
    )
    try:
        return store.record_outcome(outcome, now)
    except OutcomeConflict:
        raise ApiError(409, "event_id", "already recorded with different content") from None


__all__ = ["contact_time", "record_contact_outcome"]
