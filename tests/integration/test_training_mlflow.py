"""Train, log, register and promote for real against a local MLflow tracking store."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from churn.cli import main
from tests.conftest import ROOT


def _environment(tmp) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "CHURN_OUTPUT_DIR": str(tmp / "out")}


@pytest.fixture(scope="module")
def project_run(tmp_path_factory):
    """`mlflow run . -e main` once for the module, on a temporary store: the champion it trains,
    registers and promotes is version 1, which the tests below read and never move."""
    tmp = tmp_path_factory.mktemp("mlproject")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _environment(tmp).items():
            patch.setenv(name, value)
        patch.delenv("CHURN_DATA_SOURCE", raising=False)
        patch.chdir(ROOT)
        # a clean shell: no run or experiment left in the environment by earlier in-process MLflow calls
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
        }
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        # create the experiment first, so its artifacts land in the temporary store, not in ./mlruns
        from churn.config import load_config
        from training.tracking import configure_tracking

        configure_tracking(load_config())
        result = subprocess.run(
            ["mlflow", "run", ".", "-e", "main", "--env-manager", "local", "--experiment-name", "bank-churn"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    mlflow.set_tracking_uri(None)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, result.stdout


@pytest.fixture()
def tracking(project_run, monkeypatch):
    tmp, _ = project_run
    for name, value in _environment(tmp).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CHURN_DATA_SOURCE", raising=False)
    monkeypatch.chdir(ROOT)
    mlflow.set_tracking_uri(_environment(tmp)["MLFLOW_TRACKING_URI"])
    yield tmp
    mlflow.set_tracking_uri(None)


def _alias(client, alias):
    return str(client.get_model_version_by_alias("bank-churn", alias).version)


def test_mlflow_run__main_entry_point_trains_logs_registers_and_promotes(project_run, tracking, capsys):
    _, out = project_run
    assert "PROMOTED to champion: no champion yet" in out
    assert not (ROOT / "mlruns").exists(), "nothing is written into the repository"
    client = mlflow.MlflowClient()
    assert _alias(client, "champion") == _alias(client, "challenger") == "1"

    run = mlflow.search_runs(experiment_names=["bank-churn"], output_format="list")[0]
    assert run.data.metrics["roc_auc"] > run.data.metrics["one_rule.roc_auc"]
    assert {"logistic.roc_auc", "next_product.map_at_3", "popularity.map_at_3", "ece", "lift_top10"} <= set(
        run.data.metrics
    )
    assert run.data.tags["git_commit"]
    params = run.data.params
    assert (params["churn.num_leaves"], params["drivers.num_leaves"]) == ("7", "15"), (
        "both boosters' settings are logged: the reasons' model has its own"
    )
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/roc.png",
        "plots/calibration.png",
        "plots/gain_lift.png",
        "plots/shap_beeswarm.png",
        "plots/shap_bar.png",
    } <= artifacts
    assert client.list_artifacts(run.info.run_id, "reference")
    assert run.inputs.dataset_inputs, "dataset lineage is logged"

    # a retrain on the same data is registered but is not better, so the champion stays
    assert main(["train"]) == 0
    assert main(["promote"]) == 0
    out = capsys.readouterr().out
    assert "champion kept: not better than the champion" in out
    assert (_alias(client, "champion"), _alias(client, "challenger")) == ("1", "2")
    decision = mlflow.search_runs(experiment_names=["bank-churn-promotion"], output_format="list")[0]
    assert decision.data.tags["decision"] == "kept champion"
    # both comparisons on the same held-out campaigns say why there is none: the same history
    for label, param in (("uplift", "uplift_comparison"), ("playbook model", "playbook_comparison")):
        assert any(
            line.startswith(f"  {label} ") and "trained the champion too" in line for line in out.splitlines()
        ), out
        assert "trained the champion too" in decision.data.params[param]
    # how each side's list would rank, as the list job would resolve `auto` for that bundle
    from churn.config import load_config
    from serving.actions import ranking_mode
    from serving.registry import load_bundle

    config = load_config()
    for side, version in (("challenger", "2"), ("champion", "1")):
        mode, why = ranking_mode(load_bundle(config, version), config)
        words = decision.data.params[f"{side}_list"]
        assert words.startswith(f"ranked by {mode} ({why})") and f"  {side} list" in out, words
    # forced to value the list by the model of the playbook's choice, which has no cross-fitted
    # figure on the sample: the sanity gate names it, through the real registry
    from training.jobs import run_promotion

    lines = run_promotion(config.with_uplift(ranking="uplift", playbook_effect="pooled"))
    said = next(line for line in lines if line.startswith("decision"))
    assert "champion kept: sanity gates failed" in said
    assert "the model of the playbook's choice shows no incremental value" in said
    assert "(no cross-fitted figure)" in said, said
    assert (_alias(client, "champion"), _alias(client, "challenger")) == ("1", "2")

    assert main(["promote", "--force"]) == 0
    assert _alias(client, "champion") == "2"
    # the challenger is the champion now: the comparisons say so, not "no champion"
    lines = run_promotion(config)
    assert "  uplift              the challenger is already the champion: not compared" in lines
    assert "  playbook model      the challenger is already the champion: not compared" in lines


def test_promote__a_first_model_that_fails_its_own_gates_leaves_the_registry_without_a_champion(
    tracking, capsys
):
    from mlflow.exceptions import MlflowException

    from churn.config import load_config
    from training.jobs import run_promotion

    client = mlflow.MlflowClient()
    champion = _alias(client, "champion")
    client.delete_registered_model_alias("bank-churn", "champion")
    try:
        config = load_config()
        strict = config.model_copy(
            update={"promotion": config.promotion.model_copy(update={"max_ece": 1e-9})}
        )
        said = next(line for line in run_promotion(strict) if line.startswith("decision"))
        assert (
            "NOT promoted, no champion: no champion yet, and the first model fails the sanity gates" in said
        )
        assert "calibration error" in said and "> 1e-09" in said and "--force" in said, said
        with pytest.raises(MlflowException):
            client.get_model_version_by_alias("bank-churn", "champion")
        # the daily list refuses to run without a champion, with a message, not a traceback
        capsys.readouterr()
        assert main(["score"]) == 2
        err = capsys.readouterr().err
        assert "has the alias 'champion'" in err and "--force" in err and "Traceback" not in err
        # with the configured gates the same model passes them and becomes champion
        said = next(line for line in run_promotion(config) if line.startswith("decision"))
        assert "PROMOTED to champion: no champion yet: the first model passes the sanity gates" in said
        assert _alias(client, "champion") == _alias(client, "challenger")
    finally:
        client.set_registered_model_alias("bank-churn", "champion", champion)


def test_registered_pyfunc__gives_the_bundles_numbers_and_names_what_it_needs(tracking):
    from importlib.metadata import version

    model = mlflow.pyfunc.load_model("models:/bank-churn/1")
    bundle = model.unwrap_python_model().bundle
    from churn.config import load_config
    from features.build import build_features
    from features.jobs import load_validated

    config = load_config()
    tables = load_validated(config).tables
    features = build_features(tables, "2026-06-01", config.features, tuple(config.products)).head(20)
    from training.tracking import plain_columns

    served = model.predict(plain_columns(features))
    expected = bundle.churn_probability(bundle.prepare(features))
    np.testing.assert_allclose(served["churn_probability"].to_numpy(), expected)
    np.testing.assert_allclose(served["value_at_risk"], served["churn_probability"] * served["value"])
    # the environment it needs, pinned: the booster's library included, this project's package not
    requirements = Path(mlflow.artifacts.download_artifacts("models:/bank-churn/1/requirements.txt"))
    pinned = requirements.read_text().split()
    assert f"lightgbm=={version('lightgbm')}" in pinned and f"pandas=={version('pandas')}" in pinned
    assert not any(line.startswith("bank-churn") for line in pinned)
