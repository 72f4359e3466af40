"""`churn simulate`: the bank continued with and without a list's contacts, on common random numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churn.cli import main
from churn.config import load_config
from features.bank.simulate import SimulationError, expected_savings, simulate_with_config
from features.generator import generate_bank, write_bank


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory):
    return write_bank(
        generate_bank(customers=2000, months=14, seed=41), tmp_path_factory.mktemp("sim") / "bank"
    )


@pytest.fixture(scope="module")
def config():
    return load_config()


def _simulate(bank_dir, frame, config, seeds=3):
    return simulate_with_config(bank_dir, frame, config, seeds)


RESPONSE_TYPES_ALL = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")


def _list_of(bank_dir, types: tuple[str, ...], action: str) -> pd.DataFrame:
    truth = pd.read_parquet(bank_dir / "truth" / "customers.parquet")
    alive = truth["decided_to_leave"].isna()
    return pd.DataFrame(
        {
            "customer_id": truth["customer_id"],
            "action": action,
            "contact": alive & truth["uplift_type"].isin(types),
        }
    )


def test_simulate__no_contacts_change_nothing_exactly(bank_dir, config):
    frame = _list_of(bank_dir, (), "retention_call")
    figures = _simulate(bank_dir, frame, config)
    assert figures["contacted"] == 0 and figures["cost"] == 0
    assert figures["saved_customers"] == 0 and figures["saved_customers_interval"] == [0, 0]


def test_simulate__persuadables_are_saved_and_sleeping_dogs_pushed_away(bank_dir, config):
    """What the generator plants: a service-recovery call saves persuadable customers, any contact
    drives sleeping dogs away; sure things and lost causes do not move."""
    persuaded = _simulate(bank_dir, _list_of(bank_dir, ("persuadable",), "service_recovery_call"), config)
    dogs = _simulate(bank_dir, _list_of(bank_dir, ("sleeping_dog",), "service_recovery_call"), config)
    unmoved = _simulate(bank_dir, _list_of(bank_dir, ("sure_thing", "lost_cause"), "rate_offer"), config)
    assert persuaded["saved_customers"] > 0 and persuaded["value_saved"] > 0
    assert dogs["saved_customers"] < 0
    assert dogs["sleeping_dogs_contacted"] == dogs["contacted"] > 0
    assert unmoved["saved_customers"] == 0
    assert persuaded["cost"] == pytest.approx(40.0 * persuaded["contacted"])
    assert persuaded["net_value"] == pytest.approx(persuaded["value_saved"] - persuaded["cost"], abs=0.05)


def test_expected_savings__each_contact_on_its_own_adds_up_to_the_lists_figures(bank_dir, config):
    """The best-list benchmark's estimates: on the same continuations, a list's per-contact savings
    sum to `churn simulate`'s figures, and a customer's saving hardly depends on who else is
    contacted (a contact's reach is drawn by its place in the list: on this bank 6 of 606 differed
    when everyone else was contacted too)."""
    everyone = _list_of(bank_dir, RESPONSE_TYPES_ALL, "service_recovery_call")
    persuadable = _list_of(bank_dir, ("persuadable",), "service_recovery_call")
    figures = _simulate(bank_dir, persuadable, config, seeds=3)
    savings = expected_savings(
        bank_dir, {"all": everyone, "some": persuadable}, config, seeds=3, first_seed=0
    )
    some = savings[savings["list"] == "some"].set_index("customer_id")
    assert len(some) == figures["contacted"] and some["cost"].sum() == pytest.approx(
        figures["cost"], abs=0.006
    )
    assert some["saved"].sum() == pytest.approx(figures["saved_customers"], abs=0.006)
    assert (some["saved"] * some["value"]).sum() == pytest.approx(figures["value_saved"], abs=0.006)
    assert some["net"].sum() == pytest.approx(figures["net_value"], abs=0.006)
    alone = savings[savings["list"] == "all"].set_index("customer_id").loc[some.index]
    assert (alone["saved"] == some["saved"]).mean() > 0.97
    # the chance lost without the contact is the same run whoever else is contacted, and the
    # chance lost with it (lost - saved) is a chance too
    np.testing.assert_array_equal(alone["lost"], some["lost"])
    assert some["lost"].between(0, 1).all() and (some["lost"] - some["saved"]).between(0, 1).all()
    assert (some["lost"] > 0).any()
    assert (some["saved"] > 0).any()
    other = expected_savings(bank_dir, {"some": persuadable}, config, seeds=3, first_seed=100)
    assert not np.allclose(other["saved"].to_numpy(), some["saved"].to_numpy())


def test_contact_effect__no_action_touches_natural_churn_and_dogs_are_pushed_whatever_the_action():
    from features.bank.response import ACTIONS, RESPONSE_TYPES, contact_effect
    from features.causes import CAUSE_CODES, CAUSES

    types = np.repeat(np.arange(len(RESPONSE_TYPES)), len(ACTIONS))
    actions = np.tile(np.arange(len(ACTIONS)), len(RESPONSE_TYPES))
    effect = contact_effect(types, actions, np.ones(types.size, dtype=bool))
    natural = [j for j, code in enumerate(CAUSE_CODES) if CAUSES[code][0] == "natural"]
    assert (effect[:, natural] == 0).all()
    dog = types == RESPONSE_TYPES.index("sleeping_dog")
    touchable = [j for j in range(len(CAUSE_CODES)) if j not in natural]
    assert (effect[np.ix_(dog, touchable)] > 0).all()
    unmoved = np.isin(types, [RESPONSE_TYPES.index("sure_thing"), RESPONSE_TYPES.index("lost_cause")])
    assert (effect[unmoved] == 0).all()
    persuadable = types == RESPONSE_TYPES.index("persuadable")
    recovery = persuadable & (actions == ACTIONS.index("service_recovery_call"))
    offer = persuadable & (actions == ACTIONS.index("rate_offer"))
    complaint, rival = CAUSE_CODES.index("COMPLAINT"), CAUSE_CODES.index("COMPETITOR_RATE")
    assert effect[recovery, complaint] < effect[offer, complaint], "service recovery fits a service failure"
    assert effect[offer, rival] < effect[recovery, rival], "a rate offer fits competition"
    assert (contact_effect(types, actions, np.zeros(types.size, dtype=bool)) == 0).all()


def test_uplift_type_probabilities__are_the_shares_the_generator_draws():
    """The benchmarks' best possible knowledge of who responds (benchmarks.uplift_dogs) must be the
    chance the generator actually draws with, not a formula beside it."""
    from features.bank.population import UPLIFT_TYPES, _uplift_types, uplift_type_probabilities

    # a young digital newcomer, a long-tenured affluent branch customer, a mid-life mass customer
    traits = {
        "tenure": [0.5, 20.0, 6.0],
        "segment": [0, 1, 0],
        "digital": [1, 0, 1],
        "age": [24.0, 58.0, 41.0],
    }
    n = 40_000
    drawn = {k: np.repeat(v, n) for k, v in traits.items()}
    kinds = _uplift_types(
        np.random.default_rng(7), drawn["tenure"], drawn["segment"], drawn["digital"], drawn["age"]
    )
    shares = np.stack([np.bincount(kinds[i * n : (i + 1) * n], minlength=4) / n for i in range(3)])
    expected = uplift_type_probabilities(
        traits["tenure"], traits["segment"], traits["digital"], traits["age"]
    )
    np.testing.assert_allclose(shares, expected, atol=0.01)
    dog = UPLIFT_TYPES.index("sleeping_dog")
    assert expected[0, dog] > 0.25 > 0.02 > expected[1, dog], (
        "the young digital newcomer is the likely sleeping dog"
    )


def test_uplift_dogs__reads_the_traits_the_generator_drew_the_types_from(bank_dir):
    """benchmarks.uplift_dogs rebuilds each customer's traits from the bank's tables; read wrongly
    (a segment inverted, tenure at the wrong date) its chances would not match the drawn types."""
    import json

    from sklearn.metrics import roc_auc_score

    from benchmarks.uplift_dogs import dog_chance

    customers = pd.read_parquet(bank_dir / "customers.parquet").set_index("customer_id")
    truth = pd.read_parquet(bank_dir / "truth" / "customers.parquet").set_index("customer_id")
    start = pd.Timestamp(json.loads((bank_dir / "manifest.json").read_text())["start"])
    chance = dog_chance(customers, customers, truth, start)
    dog = truth["uplift_type"].reindex(chance.index).eq("sleeping_dog")
    assert chance.mean() == pytest.approx(dog.mean(), abs=0.02)
    assert roc_auc_score(dog, chance) > 0.75


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["contact"]), "missing column(s) contact"),
        (lambda f: f.assign(action="free_holiday"), "action: free_holiday not in the playbook"),
        (lambda f: f.assign(contact="maybe"), "contact: "),
        (lambda f: f.assign(customer_id=f["customer_id"] + 10**6), "not customers of this bank"),
        (lambda f: pd.concat([f, f]), "contacted twice"),
        (lambda f: f.assign(as_of="2030-01-01"), "as_of: 2030-01-01 is outside the bank's months"),
    ],
)
def test_simulate__a_bad_list_is_refused_naming_the_field(bank_dir, config, change, message):
    frame = change(_list_of(bank_dir, ("persuadable",), "rate_offer").head(50).assign(contact=True))
    with pytest.raises(SimulationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _simulate(bank_dir, frame, config, seeds=1)


def test_simulate_cli__writes_the_figures_and_refuses_a_bank_it_cannot_continue(bank_dir, tmp_path, capsys):
    listed = tmp_path / "list.csv"
    _list_of(bank_dir, ("persuadable",), "rate_offer").to_csv(listed, index=False)
    out = tmp_path / "figures.json"
    assert (
        main(["simulate", "--bank", str(bank_dir), "--list", str(listed), "--json", str(out), "--seeds", "2"])
        == 0
    )
    figures = json.loads(out.read_text())
    assert {"saved_customers", "value_saved", "cost", "net_value", "sleeping_dogs_contacted"} <= set(figures)
    assert "net value" in capsys.readouterr().out
    assert main(["simulate", "--bank", str(tmp_path), "--list", str(listed)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


def test_exploration_share__more_randomised_history_that_simulate_replays_exactly():
    """A bank that explores more has more randomised contacts, and `churn simulate` re-runs that
    bank's own history (the share is in its manifest), not the default one's."""
    from features.bank.simulate import replay

    default = generate_bank(customers=2000, months=14, seed=41)
    explorer = generate_bank(customers=2000, months=14, seed=41, exploration_share=0.06)

    def explored(bank) -> int:
        return int(bank.tables["contacts"]["campaign"].str.startswith("EXP-").sum())

    assert explorer.manifest["exploration_share"] == 0.06
    assert 2.2 < explored(explorer) / explored(default) < 3.8
    decided = explorer.truth_customers["decided_to_leave"].notna().to_numpy()
    assert ((replay(explorer.manifest, 14).decided_month >= 0) == decided).all()
    as_default = {**explorer.manifest, "exploration_share": 0.02}
    assert not ((replay(as_default, 14).decided_month >= 0) == decided).all(), "the share changes the bank"


def test_generate_cli__an_exploration_share_out_of_range_is_refused_naming_it(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path / "g"), "--exploration-share", "0.5"]) == 2
    assert "exploration_share" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
