"""The model benchmarks' entry points run end to end, on the committed sample instead of their
generated banks: `make bench-lr` and `make bench-tune` once patched a pipeline function that no
longer existed and crashed unseen until someone ran them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAMPLE


@pytest.fixture()
def on_the_sample(monkeypatch):
    """Every benchmark's bank is the committed sample (no bank is generated)."""

    def bank_path(customers: int, months: int, seed: int):
        return SAMPLE

    for module in ("benchmarks.learning_rate", "benchmarks.train", "benchmarks.tune"):
        monkeypatch.setattr(f"{module}.bank_path", bank_path)


def test_bench_lr__trains_each_learning_rate_pair_and_reports_it(on_the_sample, monkeypatch, tmp_path):
    import benchmarks.learning_rate as lr
    from churn.config import load_config

    training = load_config(environ={}).training
    configured = (training.churn.learning_rate, training.next_product.learning_rate)
    assert configured in lr.PAIRS, "the benchmark compares the configured pair with the others"
    monkeypatch.setattr(lr, "PAIRS", [configured])  # one pair: the loop is the same for every pair
    assert lr.main(["--json", str(tmp_path / "lr.json")]) == 0
    rows = json.loads((tmp_path / "lr.json").read_text())
    assert [(r["churn_learning_rate"], r["next_product_learning_rate"]) for r in rows] == [configured]
    for row in rows:
        assert row["churn_trees"] >= 1 and 0.5 < row["roc_auc"] <= 1.0, row


def test_bench_train__trains_each_tree_size_and_times_its_explanations(on_the_sample, monkeypatch, tmp_path):
    import benchmarks.train as bench

    monkeypatch.setattr(bench, "SIZES", [(7, 3), (15, 5)])
    assert bench.main(["--explain-rows", "100", "--json", str(tmp_path / "train.json")]) == 0
    rows = json.loads((tmp_path / "train.json").read_text())["sizes"]
    assert [(r["num_leaves"], r["max_depth"]) for r in rows] == [(7, 3), (15, 5)]
    assert all(r["trees"] >= 1 and r["max_abs_diff"] < 1e-6 for r in rows), rows


def test_bench_tune__compares_the_configured_model_with_a_search(on_the_sample, tmp_path):
    import benchmarks.tune as bench

    out = tmp_path / "tune.json"
    assert (
        bench.main(["--only", "bank", "--bank-minutes", "0.05", "--explain-rows", "100", "--json", str(out)])
        == 0
    )
    (results,) = json.loads(out.read_text()).values()
    assert {"default", "tuned", "chosen_params"} <= set(results)
    assert results["tuned"]["trials"] >= 1, results["tuned"]


def test_bench_uplift__the_issues_comparison_and_the_studies_that_read_its_cache(
    monkeypatch, tmp_path, capsys
):
    """`make bench-uplift` on a copy of the sample as its cached bank; `make bench-uplift-banks`
    summarises the JSON it wrote, and `benchmarks.uplift_settings` reads the bank, bundle and
    estimates it cached: its configured list is the benchmark's, to the unit, and a variant that
    restates a default is the same list."""
    import shutil

    import benchmarks.uplift as bench
    from benchmarks import uplift_banks, uplift_settings

    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    bank = [
        "--customers",
        str(manifest["customers"]),
        "--seed",
        str(manifest["seed"]),
        "--capacity-scale",
        "1",
    ]
    shutil.copytree(SAMPLE, tmp_path / f"uplift_{manifest['customers']}_seed{manifest['seed']}")
    monkeypatch.setattr(bench, "CACHE", tmp_path)
    valued = ["--value-seeds", "2", "--value-first-seed", "1000"]
    out = tmp_path / "uplift.json"
    assert bench.main([*bank, "--seeds", "1", *valued, "--json", str(out)]) == 0
    run = json.loads(out.read_text())
    assert set(run["targets"]) == {
        "net value, uplift / probability",
        "net value, uplift / random",
        "sleeping dogs, uplift / probability",
        "Qini interval's lower bound",
    }
    lists = run["lists"]
    assert set(lists) == {
        "uplift",
        "uplift, playbook action",
        "probability",
        "pool, playbook effects",
        "random",
        "persuadables known",
    }
    assert lists["random"]["contacted"] == lists["probability"]["contacted"] > 0
    assert lists["persuadables known"]["sleeping_dogs_contacted"] == 0
    expected = run["expected"]
    assert run["targets"]["net value, uplift / probability"]["value"] == pytest.approx(expected["ratio"])
    assert expected["configured"]["contacted"] == lists["uplift, playbook action"]["contacted"]

    assert uplift_banks.main([str(out)]) == 0
    summary = capsys.readouterr().out
    names = zip(
        ("net >= 1.5x", "random >= 3x", "dogs <= 1/3", "Qini above 0"), run["targets"].values(), strict=True
    )
    for name, target in names:  # the summary reads the verdicts the run wrote
        assert f"  {name:14s} {int(target['met'])} of 1" in summary

    studied = tmp_path / "settings.json"
    variant = ["--variant", "restated=playbook_offsets=true"]
    assert uplift_settings.main([*bank, *valued, *variant, "--json", str(studied)]) == 0
    figures = json.loads(studied.read_text())["figures"]
    assert figures["configured"]["net_value"] == pytest.approx(expected["configured"]["net_value"])
    assert figures["today"]["net_value"] == pytest.approx(expected["today"]["net_value"])
    assert figures["restated"]["minus_configured"] == 0


def test_bench_features__times_each_bank_size_against_its_baseline(tmp_path, monkeypatch):
    """A smaller bank is the first customers of the larger one, with every table cut to them
    (the market's rates, which belong to no customer, whole)."""
    import benchmarks.features as bench

    monkeypatch.setattr(bench, "bank_path", lambda customers, months, seed: SAMPLE)
    out = tmp_path / "features.json"
    assert bench.main(["--customers", "1000", "2500", "--repeats", "1", "--json", str(out)]) == 0
    small, whole = json.loads(out.read_text())
    assert (small["customers"], whole["customers"]) == (1000, 2500)
    assert 0 < small["transactions"] < whole["transactions"]
    assert all(r["seconds"] > 0 and r["ratio_to_baseline"] > 0 for r in (small, whole))


def test_bench_score__scores_explains_and_lists_the_resampled_rows(trained, config, tmp_path, monkeypatch):
    """`make bench-score` on 3,000 rows resampled from the sample, with the session's model as
    its cached bundle: the list is held to the capacity the run scales the teams to."""
    import benchmarks.score as bench

    monkeypatch.setattr(bench, "CACHE", tmp_path)
    monkeypatch.setattr(bench, "bank_path", lambda customers, months, seed: SAMPLE)
    trained.bundle.save(tmp_path / "bundle_100k")
    out = tmp_path / "score.json"
    assert bench.main(["--rows", "3000", "--list-size", "100", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["rows"] == 3000 and result["trees"] == trained.bundle.churn_booster.num_trees()
    assert 0 < result["list_size"] <= 100 + len(config.playbook.capacity)  # each team's share rounds up
    assert 0 < result["explained_rows"] < 3000


def test_bench_reasons__the_first_reasons_against_the_planted_causes(trained, tmp_path, monkeypatch):
    """`make bench-reasons` on a copy of the sample as its cached bank, with the session's model
    as its cached bundle: the figures it prints are fractions of the leavers it scored."""
    import shutil

    import benchmarks.reasons as bench

    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    root = tmp_path / f"reasons_{manifest['customers']}_seed{manifest['seed']}"
    shutil.copytree(SAMPLE, root)
    trained.bundle.save(root / "bundle")
    (root / "metrics.json").write_text(json.dumps({"roc_auc": trained.metrics["roc_auc"]}))
    monkeypatch.setattr(bench, "CACHE", tmp_path)
    out = tmp_path / "reasons.json"
    bank = ["--customers", str(manifest["customers"]), "--seed", str(manifest["seed"])]
    assert bench.main([*bank, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert 0 < figures["scored"] <= figures["leavers"]
    assert 0 <= figures["reason_1"] <= figures["top_3"] <= 1
    assert 0 <= figures["churn_type"] <= 1
