"""The scoring core on the sample: accounting, policy, ranking under capacity, batch/online parity."""

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from serving.scoring import ScoringContext, score_customers

AS_OF = pd.Timestamp("2026-10-01")


@pytest.fixture(scope="module")
def scored(trained, sample, config, products):
    features = build_features(sample.tables, AS_OF, config.features, products)
    context = ScoringContext(AS_OF, sample["customers"].set_index("customer_id"), sample["contacts"])
    return features, context, score_customers(trained.bundle, features, context, config)


def test_score_customers__every_input_row_is_scored_once(scored):
    features, _, out = scored
    assert out.index.equals(features.index)
    assert out["churn_probability"].between(0, 1).all()
    assert out["contact_rule"].notna().all(), "every customer has the rule that decided"


def test_score_customers__contact_policy_is_obeyed(scored, config):
    _, context, out = scored
    contacted = out[out["contact"]]
    assert len(contacted) > 0
    assert not context.customers.loc[contacted.index, "do_not_contact"].any()
    assert not contacted["control_group"].any()
    assert (contacted["expected_saving"] > 0).all()
    assert (contacted["churn_probability"] >= config.scoring.reporting_threshold).all()
    per_team = contacted.groupby("action_owner").size()
    for team, count in per_team.items():
        if team in config.playbook.per_branch:
            assert (
                contacted[contacted["action_owner"] == team].groupby("branch_id").size().max()
                <= config.playbook.per_branch[team]
            )
        else:
            assert count <= config.playbook.capacity[team], team
    assert 0.05 < out["control_group"].mean() < 0.15


def test_score_customers__list_is_ranked_by_expected_net_saving(scored):
    _, _, out = scored
    listed = out[out["contact"]].sort_values("list_rank")
    assert listed["list_rank"].tolist() == list(range(1, len(listed) + 1))
    assert listed["expected_saving"].is_monotonic_decreasing
    assert not listed["churn_probability"].is_monotonic_decreasing, "not simply by probability"


def test_score_customers__reasons_for_reported_customers_only(scored, config):
    _, _, out = scored
    reported = out["churn_probability"] >= config.scoring.reporting_threshold
    assert out.loc[reported, "reason_1_code"].notna().mean() > 0.95
    assert out.loc[~reported, "reason_1_code"].isna().all()
    assert out.loc[~reported, "action"].isna().all()


def test_score_customers__one_customer_alone_gets_the_batch_numbers(scored, trained, config):
    """Batch/online parity: the API scores one customer with the same function."""
    features, context, out = scored
    chosen = out[out["contact"]].index[:3].append(out[~out["contact"]].index[:3])
    for customer_id in chosen:
        alone = score_customers(trained.bundle, features.loc[[customer_id]], context, config).iloc[0]
        batch = out.loc[customer_id]
        for column in out.columns.drop(
            ["contact", "contact_rule", "list_rank"]
        ):  # capacity is a batch matter
            a, b = alone[column], batch[column]
            if isinstance(b, float) and np.isnan(b):
                assert isinstance(a, float) and np.isnan(a), column
            else:
                assert a == pytest.approx(b) if isinstance(b, float) else a == b, column
