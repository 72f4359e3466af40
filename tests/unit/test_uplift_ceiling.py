"""`benchmarks.uplift_ceiling`: the best list a clairvoyant would build from estimated savings."""

from __future__ import annotations

import pandas as pd

from benchmarks.uplift_ceiling import best_list


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
