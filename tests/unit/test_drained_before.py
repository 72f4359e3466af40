import pandas as pd

from churn.config import LabelConfig
from features.labels import drained_before
from tests.factories import bank

RULE = LabelConfig(horizon_days=90, drain_ratio=0.2, stay_months=2, min_reference_assets=500.0)


def _series(customer_id, values, start="2025-02-28"):
    months = pd.date_range(start, periods=len(values), freq="ME")
    return [
        {"customer_id": customer_id, "month_end": m, "deposits": v, "investments": 0.0, "loans": 0.0}
        for m, v in zip(months, values, strict=True)
    ]


def test_drained_before__uses_only_month_ends_before_as_of():
    tables = bank(
        balances=_series(1, [5000, 5000, 5000, 100, 100]) + _series(2, [5000, 5000, 5000, 4000, 100])
    )
    # as-of 2025-06-01: the last month-end is 2025-05-31 (customer 1 drained in May; customer 2 only in June)
    result = drained_before(tables, "2025-06-01", RULE)
    assert bool(result[1]) is True
    assert bool(result[2]) is False
    assert bool(drained_before(tables, "2025-07-01", RULE)[2]) is True


def test_drained_before__small_balances_and_short_history_are_not_drained():
    tables = bank(balances=_series(1, [300, 300, 300, 10]) + _series(2, [5000, 10]))
    result = drained_before(tables, "2025-06-01", RULE).reindex([1, 2], fill_value=False)
    assert not result.any()


def test_drained_before__an_account_emptied_months_ago_and_kept_open_has_left():
    # drained in May 2025 (confirmed by the June and July month-ends), empty since: by October the
    # last-month rule alone no longer sees it (its reference is empty too); the label's rule does
    tables = bank(balances=_series(1, [5000, 5000, 5000, 100, 90, 80, 80, 80, 80]))
    assert bool(drained_before(tables, "2025-11-01", RULE)[1]) is True
    # a fall the next month-ends did not confirm (the money came back) is no drain
    later = bank(balances=_series(1, [5000, 5000, 5000, 100, 4000, 4000, 4000, 4000]))
    assert not drained_before(later, "2025-10-01", RULE).get(1, False)
