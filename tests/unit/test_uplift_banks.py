"""`benchmarks.uplift_banks`: the uplift benchmark's verdicts over several banks, from its files."""

from __future__ import annotations

import json

from benchmarks.uplift_banks import bank_row, main, verdicts


def _run(
    path,
    seed,
    uplift_net,
    probability_net,
    dogs,
    qini_low,
    configured="uplift, playbook action",
    expected=None,
):
    def listed(net, sleeping_dogs):
        return {"contacted": 100, "net_value": net, "sleeping_dogs_contacted": sleeping_dogs}

    run = {
        "bank": {"seed": seed, "exploration_share": 0.02, "configured": configured},
        "lists": {
            configured: listed(uplift_net, dogs),
            "probability": listed(probability_net, 30),
            "random": listed(-5_000.0, 30),
        },
        "metrics": {"uplift_qini": qini_low + 0.002, "uplift_qini_low": qini_low, "uplift_qini_high": 0.004},
    }
    if expected is not None:
        run["expected"] = {"ratio": expected}
    path.write_text(json.dumps(run))
    return path


def test_verdicts__each_target_read_from_the_configured_lists_figures(tmp_path):
    good = bank_row(_run(tmp_path / "a.json", 1, 160_000.0, 100_000.0, 10, 0.0005))
    assert good["net"] == 1.6 and good["random"] == float("inf") and good["dogs"] == 10 / 30
    assert all(verdicts(good).values())
    short = bank_row(_run(tmp_path / "b.json", 2, 140_000.0, 100_000.0, 11, -0.0001, configured="uplift"))
    assert verdicts(short) == {
        "net >= 1.5x": False,
        "random >= 3x": True,
        "dogs <= 1/3": False,
        "Qini above 0": False,
    }


def test_main__counts_the_banks_meeting_each_target(tmp_path, capsys):
    runs = [
        _run(tmp_path / "a.json", 1, 160_000.0, 100_000.0, 10, 0.0005),
        _run(tmp_path / "b.json", 2, 140_000.0, 100_000.0, 11, -0.0001),
    ]
    assert main([str(p) for p in runs]) == 0
    out = capsys.readouterr().out
    assert (
        "net >= 1.5x    1 of 2" in out and "random >= 3x   2 of 2" in out and "Qini above 0   1 of 2" in out
    )
    assert "medians: net 1.50x" in out


def test_verdicts__the_net_value_in_expectation_decides_where_a_run_has_it(tmp_path):
    """Five continuations said 1.6x, many more 1.3x: the target reads the second; a run without it
    (written before) keeps reading the first."""
    run = bank_row(_run(tmp_path / "a.json", 1, 160_000.0, 100_000.0, 10, 0.0005, expected=1.3))
    assert run["net"] == 1.6 and run["net_expected"] == 1.3
    assert verdicts(run)["net >= 1.5x"] is False
    assert verdicts(bank_row(_run(tmp_path / "b.json", 2, 160_000.0, 100_000.0, 10, 0.0005)))["net >= 1.5x"]


def test_main__the_median_in_expectation_once_every_run_has_it(tmp_path, capsys):
    runs = [
        _run(tmp_path / "a.json", 1, 160_000.0, 100_000.0, 10, 0.0005, expected=1.3),
        _run(tmp_path / "b.json", 2, 90_000.0, 100_000.0, 11, 0.0005, expected=1.2),
    ]
    assert main([str(p) for p in runs]) == 0
    out = capsys.readouterr().out
    # the five continuations would count the first bank (1.6x); in expectation neither meets 1.5x
    assert "net >= 1.5x    0 of 2" in out and "net_expected 1.25x" in out
