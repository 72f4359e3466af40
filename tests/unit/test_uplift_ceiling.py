"""`benchmarks.uplift_ceiling`: the best list a clairvoyant would build from estimated savings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.uplift_ceiling import best_list, expected_net


def test_best_list__one_contact_per_customer_the_best_paying_ones_within_the_size():
    savings = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3, 3, 4, 5],
            "action": ["call", "offer", "call", "call", "offer", "call", "offer"],
            "net": [50.0, 80.0, -10.0, 30.0, 5.0, 60.0, 0.0],
        }
    )
    picked = best_list(savings, size=2)
    assert picked[["customer_id", "action"]].values.tolist() == [[1, "offer"], [4, "call"]]
    everyone = best_list(savings, size=10)
    # customer 2 costs more than it saves and customer 5 saves nothing: neither is contacted
    assert everyone["customer_id"].tolist() == [1, 4, 3]
    assert everyone.set_index("customer_id").loc[3, "action"] == "call"


def test_expected_net__its_standard_error_is_the_spread_of_the_lists_net_value_over_continuations():
    """Contacts saving -1, 0 or 1 customers per continuation, independently: the standard error
    from each contact's saved and moved chances matches the spread of the list's total."""
    rng = np.random.default_rng(3)
    customers, seeds = 400, 40
    value = rng.uniform(100, 5_000, customers)
    p_save, p_lose = rng.uniform(0, 0.3, customers), rng.uniform(0, 0.1, customers)
    totals, ses = [], []
    for _ in range(300):
        u = rng.random((seeds, customers))
        outcome = (u < p_save).astype(float) - ((u >= p_save) & (u < p_save + p_lose))
        savings = pd.DataFrame(
            {
                "customer_id": np.arange(customers),
                "action": "call",
                "saved": outcome.mean(axis=0),
                "moved": np.abs(outcome).mean(axis=0),
                "value": value,
            }
        ).assign(net=lambda f: f["saved"] * f["value"] - 10.0)
        net, se = expected_net(savings, savings[["customer_id", "action"]], seeds)
        assert net == savings["net"].sum()
        totals.append(net)
        ses.append(se)
    assert np.mean(ses) == pytest.approx(np.std(totals, ddof=1), rel=0.12)
