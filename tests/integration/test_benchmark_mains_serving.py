"""The serving and data benchmarks' entry points run end to end on small inputs: `make bench-serve`,
`bench-soak`, `bench-reload`, `bench-desk`, `bench-engine` and `bench-scale`. Each is minutes to
hours at its real size and no test ran it, so a change to what it calls could break it unseen (the
feature benchmark had crashed on the market table since that table came). Their shared workspace
is a copy of the API tests' champion and daily list instead of a training of its own."""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest

from tests.conftest import SAMPLE
from tests.integration.conftest import _copy_store, copy_pristine


@pytest.fixture(scope="module")
def bench_workspace(api_workspace, tmp_path_factory):
    """`benchmarks/.cache/serve` as `benchmarks.serve.workspace` builds it (a promoted champion and
    the daily list in its database), copied from the API tests' workspace; the benchmarks'
    caches point at it for the module."""
    import benchmarks.reload
    import benchmarks.serve
    import benchmarks.soak

    cache = tmp_path_factory.mktemp("serve")
    copy_pristine(api_workspace, cache)
    (cache / "ready").write_text("ok")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(benchmarks.serve, "CACHE", cache)
        patch.setattr(benchmarks.soak, "CACHE", cache)
        patch.setattr(benchmarks.reload, "SERVE_CACHE", cache)
        patch.setattr(benchmarks.reload, "CACHE", cache / "reload")
        yield cache
    mlflow.set_tracking_uri(None)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)")
def test_bench_serve__the_api_and_mlflow_serve_at_a_fixed_rate_and_saturated(bench_workspace, tmp_path):
    import benchmarks.serve as bench

    out = tmp_path / "serve.json"
    assert bench.main(["--rate", "20", "--seconds", "2", "--saturate-seconds", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for server in ("api", "mlflow"):
        fixed, saturated = results[f"{server}_fixed"], results[f"{server}_saturated"]
        assert fixed["requests"] >= 30 and fixed["errors"] == 0, (server, fixed)
        assert saturated["rps"] > 0 and saturated["non_2xx"] == 0, (server, saturated)
    assert results["throughput_ratio_api_to_mlflow"] > 0


def test_bench_soak__swaps_the_champion_under_load_without_errors(bench_workspace, tmp_path):
    """Two swaps in eight seconds; the champion the soak found is the champion again after it."""
    import benchmarks.soak as bench

    client = mlflow.MlflowClient(f"sqlite:///{bench_workspace / 'mlflow.db'}")
    before = client.get_model_version_by_alias("bank-churn", "champion").version
    out = tmp_path / "soak.json"
    soak = [
        "--rate",
        "20",
        "--seconds",
        "8",
        "--swap-every",
        "3",
        "--swap-window",
        "2",
        "--sample-every",
        "1",
    ]
    assert bench.main([*soak, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["swaps"] == 2 and result["errors"] == 0, result
    assert result["after_swaps"]["requests"] + result["between_swaps"]["requests"] == result["requests"] > 100
    assert result["rss_first_minute_mib"] > 0
    assert client.get_model_version_by_alias("bank-churn", "champion").version == before
    assert len(client.search_model_versions("name = 'bank-churn'")) >= 3  # the two copies it promoted


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_bench_reload__times_a_whole_and_a_chunked_reload(bench_workspace, database, tmp_path, monkeypatch):
    import benchmarks.reload as bench
    from benchmarks.serve import _env

    for name, value in _env().items():  # the benchmark sets them for its process: undone after
        monkeypatch.setenv(name, value)
    out = tmp_path / "reload.json"
    assert bench.main(["--customers", "3000", "--database", database, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["whole"]["seconds"] > 0 and figures["chunks"]["seconds"] > 0
    assert figures["chunks"]["longest_wait_ms"] > 0
    assert (figures["replacement_waited_s"] is None) == (database == "sqlite")


def test_bench_desk__renders_the_list_page_beside_its_query(api_env, tmp_path):
    import benchmarks.desk as bench

    out = tmp_path / "desk.json"
    assert bench.main(["--rows", "40", "--repeat", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["rows"] == 40 and figures["as_of"].startswith("2026-11-01")
    assert figures["query_ms"] > 0 and figures["page_ms"] > 0


def test_bench_engine__the_local_engine_beside_duckdb_and_insert_beside_copy(
    postgres_url, tmp_path, monkeypatch
):
    """On a copy of the sample as its cached bank; both sides read every customer."""
    import benchmarks.engine as bench

    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    shutil.copytree(SAMPLE, tmp_path / f"uplift_{manifest['customers']}_seed{manifest['seed']}")
    monkeypatch.setattr(bench, "CACHE", tmp_path)
    out = tmp_path / "engine.json"
    bank = ["--customers", str(manifest["customers"]), "--seed", str(manifest["seed"])]
    assert bench.main([*bank, "--postgres", postgres_url, "--copy-rows", "2000", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["duckdb"]["customers"] == manifest["customers"]
    assert 0 < figures["local"]["customers"] <= manifest["customers"]
    assert figures["local"]["rejected"] == figures["duckdb"]["rejected"] == 0
    assert figures["time_ratio"] > 0 and figures["copy"]["rows"] == 2000


def test_bench_scale__a_partitioned_bank_and_a_view_of_its_first_partition(
    bench_workspace, tmp_path, monkeypatch
):
    """Two partitions of 1,000 customers; the daily list on the first and on both, each in a
    process of its own, with the API tests' champion as the model."""
    import benchmarks.scale as bench
    import benchmarks.scale_bank

    monkeypatch.setattr(bench, "CACHE", tmp_path)
    monkeypatch.setattr(benchmarks.scale_bank, "CACHE", tmp_path)
    _copy_store(bench_workspace, tmp_path / "scale_model")
    (tmp_path / "scale_model" / "trained").touch()
    plan = ["--customers", "1000", "2000", "--per-partition", "1000", "--workers", "--local-processes", "1"]
    assert bench.main([*plan, "--jobs", "score"]) == 0
    results = json.loads((tmp_path / "scale_runs" / "results.json").read_text())
    assert [(r["customers"], r["job"], r["engine"]) for r in results] == [
        (1000, "score", "local"),
        (2000, "score", "local"),
    ]
    for result in results:
        assert "failed" not in result and result["seconds"] > 0, result
        assert {"read", "score", "explain", "database"} <= set(result["stages"]), result
    assert (tmp_path / "scale_runs" / "2000_score_local1" / "churn.db").exists()
