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

    configured = lr.PAIRS[1]
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
