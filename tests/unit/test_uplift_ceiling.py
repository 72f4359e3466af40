"""`benchmarks.uplift_ceiling`: the best list a clairvoyant would build from estimated savings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.uplift_ceiling import best_list, best_list_within, expected_net


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


def test_savings_path__names_everything_the_estimates_depend_on_but_the_costs(config, tmp_path):
    from benchmarks.uplift_ceiling import savings_path

    frame = pd.DataFrame(
        {"customer_id": [100_001, 100_002], "action": ["retention_call", "rate_offer"], "contact": True}
    ).assign(as_of=pd.Timestamp("2026-11-01"))
    path = savings_path(tmp_path, "playbook", {"playbook": frame}, config, 60, 1000)
    assert path == savings_path(tmp_path, "playbook", {"playbook": frame.copy()}, config, 60, 1000)
    actions = config.playbook.actions
    cheaper = {name: a.model_copy(update={"cost": a.cost / 2}) for name, a in actions.items()}
    costs_only = config.model_copy(
        update={"playbook": config.playbook.model_copy(update={"actions": cheaper})}
    )
    assert savings_path(tmp_path, "playbook", {"playbook": frame}, costs_only, 60, 1000) == path
    longer = config.model_copy(
        update={"labels": config.labels.model_copy(update={"horizon_days": config.labels.horizon_days * 2})}
    )
    other_action = frame.assign(action=["retention_call", "service_recovery_call"])
    later = frame.assign(as_of=pd.Timestamp("2026-12-01"))
    others = {
        savings_path(tmp_path, "playbook", {"playbook": frame}, longer, 60, 1000),
        savings_path(tmp_path, "playbook", {"playbook": other_action}, config, 60, 1000),
        savings_path(tmp_path, "playbook", {"playbook": later}, config, 60, 1000),
        savings_path(tmp_path, "playbook", {"playbook": frame}, config, 20, 1000),
        savings_path(tmp_path, "playbook", {"playbook": frame}, config, 60, 2000),
    }
    assert path not in others and len(others) == 5


def test_with_costs__the_configurations_costs_and_an_action_without_one_named(config):
    from benchmarks.uplift_ceiling import with_costs

    savings = pd.DataFrame(
        {"action": ["retention_call", "rate_offer"], "saved": [0.5, -0.1], "value": [1000.0, 800.0]}
    )
    costed = with_costs(savings, config)
    costs = config.playbook.actions
    assert costed["cost"].tolist() == [costs["retention_call"].cost, costs["rate_offer"].cost]
    assert costed["net"].tolist() == pytest.approx([500.0 - costed["cost"][0], -80.0 - costed["cost"][1]])
    with pytest.raises(ValueError, match="no cost for teleport"):
        with_costs(savings.assign(action=["retention_call", "teleport"]), config)


def test_best_list_within__the_best_paying_contacts_the_teams_can_make_and_the_policy_allows(config):
    """Two branches with a per-branch team of capacity 1 each, one central team of capacity 1: the
    best-paying contact of each branch and of the central team, never a do-not-contact customer
    or one contacted too recently, however much they would save."""
    from churn.config import PlaybookConfig

    playbook = PlaybookConfig.model_validate(
        config.playbook.model_dump()
        | {
            "capacity": dict.fromkeys(config.playbook.capacity, 0) | {"savings_desk": 1},
            "per_branch": {"branch_managers": 1},
        }
    )
    config = config.model_copy(update={"playbook": playbook})
    savings = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6, 7, 7],
            "action": ["service_recovery_call"] * 4
            + ["rate_offer"] * 2
            + ["rate_offer", "service_recovery_call"],
            "net": [100.0, 90.0, 80.0, 70.0, 60.0, 50.0, 500.0, 400.0],
        }
    )
    rows = pd.DataFrame(
        {
            "branch_id": ["B1", "B1", "B2", "B2", "B1", "B2", "B1"],
            "do_not_contact": [False, False, False, False, False, False, True],
            "control_group": False,
            "days_since_last_contact": [np.nan, np.nan, 3.0, np.nan, np.nan, np.nan, np.nan],
            "contacts_last_quarter": 0.0,
        },
        index=pd.Index([1, 2, 3, 4, 5, 6, 7], name="customer_id"),
    )
    picked = best_list_within(savings, 10, rows, config)
    # B1's one call goes to customer 1; B2's to 4, since 3 was contacted three days ago; the desk's
    # one offer to 5; customer 7 is do-not-contact whatever they would save
    assert picked[["customer_id", "action"]].values.tolist() == [
        [1, "service_recovery_call"],
        [4, "service_recovery_call"],
        [5, "rate_offer"],
    ]
    assert best_list_within(savings, 2, rows, config)["customer_id"].tolist() == [1, 4]
    assert best_list(savings[savings["customer_id"] != 7], 3)["customer_id"].tolist() == [1, 2, 3]


def test_playbook_frames__every_candidate_with_the_playbooks_action_and_each_listed_other_contact_once():
    from benchmarks.uplift_ceiling import ListDay, playbook_frames

    everyone = pd.DataFrame(
        {
            "status": "scored",
            "control_group": [False, False, True, False],
            "do_not_contact": False,
            "action": ["rate_offer", "retention_call", "rate_offer", None],
        },
        index=pd.Index([1, 2, 3, 4], name="customer_id"),
    )
    day = ListDay(pd.Timestamp("2026-11-01"), None, None, 2, everyone, None)
    lists = {
        "today": pd.DataFrame({"customer_id": [1, 2], "action": ["rate_offer", "retention_call"]}),
        "configured": pd.DataFrame({"customer_id": [1, 4], "action": ["keep_foothold", "rate_offer"]}),
    }
    candidates, frames = playbook_frames(day, lists)
    # customer 3 is a control and 4 has no playbook action: neither is a candidate
    assert candidates.index.tolist() == [1, 2]
    assert frames["playbook"][["customer_id", "action"]].values.tolist() == [
        [1, "rate_offer"],
        [2, "retention_call"],
    ]
    assert frames["listed, other actions"][["customer_id", "action"]].values.tolist() == [
        [1, "keep_foothold"],
        [4, "rate_offer"],
    ]
    assert (frames["playbook"]["as_of"] == pd.Timestamp("2026-11-01")).all()


def test_in_expectation__each_lists_net_value_from_the_estimates_and_their_ratio(
    config, monkeypatch, tmp_path
):
    """Today's list contacts customers 1 and 2, the configured list 2 and 3: each list's net value is
    its contacts' saved x value - cost, and the ratio's error combines the two lists' errors."""
    import benchmarks.uplift_ceiling as ceiling

    estimates = pd.DataFrame(
        {
            "list": "playbook",
            "customer_id": [1, 2, 3],
            "action": ["rate_offer", "retention_call", "rate_offer"],
            "saved": [0.02, 0.05, 0.10],
            "moved": [0.04, 0.05, 0.12],
            "lost": [0.3, 0.2, 0.4],
            "value": [10_000.0, 4_000.0, 8_000.0],
        }
    )
    asked = {}

    def cached(root, label, frames, config_, seeds, first):
        asked.update(label=label, frames=sorted(frames), seeds=seeds, first=first)
        return estimates

    monkeypatch.setattr(ceiling, "cached_savings", cached)
    everyone = pd.DataFrame(
        {
            "status": "scored",
            "control_group": False,
            "do_not_contact": False,
            "action": estimates["action"].to_numpy(),
        },
        index=pd.Index([1, 2, 3], name="customer_id"),
    )

    def listed(ids):
        return everyone.assign(contact=everyone.index.isin(ids))

    day = ceiling.ListDay(pd.Timestamp("2026-11-01"), listed([1, 2]), listed([2, 3]), 2, everyone, None)
    out = ceiling.in_expectation(tmp_path, day, config, 60, 2000)
    cost = {a: config.playbook.actions[a].cost for a in ("rate_offer", "retention_call")}
    today = 0.02 * 10_000 - cost["rate_offer"] + 0.05 * 4_000 - cost["retention_call"]
    mine = 0.05 * 4_000 - cost["retention_call"] + 0.10 * 8_000 - cost["rate_offer"]
    assert out["today"]["net_value"] == pytest.approx(today) and out["configured"][
        "net_value"
    ] == pytest.approx(mine)
    assert out["ratio"] == pytest.approx(mine / today)
    se_today, se_mine = out["today"]["net_value_se"], out["configured"]["net_value_se"]
    assert out["ratio_se"] == pytest.approx(
        mine / today * ((se_today / today) ** 2 + (se_mine / mine) ** 2) ** 0.5
    )
    assert asked == {"label": "playbook", "frames": ["playbook"], "seeds": 60, "first": 2000}
    assert f"ratio {mine / today:.2f} +- {out['ratio_se']:.2f}" in ceiling.describe_expected(out)
