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


def test_score_customers__uplift_list_also_draws_on_customers_below_the_threshold_whose_action_saves_enough(
    scored, trained, config
):
    """In uplift mode a valuable customer at moderate risk whose best action is expected to save
    `uplift.candidate_saving` is explained and may be listed; nobody else below the threshold is.
    Today's ranking (probability) and `candidate_saving: null` keep the threshold alone."""
    from serving.actions import uplift_candidates

    features, context, _ = scored

    def ranked(**settings):
        return config.with_uplift(ranking="uplift", **settings)

    out = score_customers(trained.bundle, features, context, ranked())
    below = out["churn_probability"] < config.scoring.reporting_threshold
    x = trained.bundle.matrix(trained.bundle.prepare(features))
    p = out["churn_probability"].to_numpy()
    gate = uplift_candidates(trained.bundle, x, p, out["value"].to_numpy(), ~below.to_numpy(), ranked())
    assert 0 < gate.sum() < below.sum(), "some, not all, customers below the threshold are worth a look"
    explained = out["churn_type"].notna().to_numpy()  # diagnosed (a reason where the drivers give one)
    assert explained[gate].all() and not explained[below.to_numpy() & ~gate].any()
    listed = out[gate & out["contact"].astype(bool)]
    assert len(listed) > 0, "customers from below the threshold make the list"
    assert (listed["expected_saving"] > 0).all() and listed["action"].notna().all()
    assert out.loc[below & ~gate, "contact_rule"].eq("low risk: below the reporting threshold").all()
    for off in (ranked(candidate_saving=None), config):  # the null setting, and auto (probability here)
        plain = score_customers(trained.bundle, features, context, off)
        assert plain.loc[below, "churn_type"].isna().all()
    # batch/online parity holds for them: the gate is per customer
    customer_id = out.index[gate][0]
    alone = score_customers(trained.bundle, features.loc[[customer_id]], context, ranked()).iloc[0]
    assert alone["action"] == out.loc[customer_id, "action"]
    assert alone["expected_saving"] == pytest.approx(out.loc[customer_id, "expected_saving"])
    # the default take-up floor is on in uplift mode: the least likely responders are left out, saying so
    from serving.actions import take_up_floor_state

    assert take_up_floor_state(trained.bundle, ranked(), "uplift").startswith("below ")
    assert out["contact_rule"].astype(str).str.startswith("unlikely to respond: predicted take-up").any()
