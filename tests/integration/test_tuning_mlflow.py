"""`churn train --tune` for real: trials as nested MLflow runs, artifacts, and a retrain without search."""

import json

import mlflow
import pytest
import yaml

from churn.cli import main
from tests.conftest import ROOT
from tests.integration.test_bring_your_own_table import messy_table

TRIAL_ARTIFACTS = {
    "tuning/search_space.json",
    "tuning/best_params.json",
    "tuning/churn_params.yaml",
    "tuning/trials.csv",
    "tuning/optimization_history.png",
    "tuning/param_importances.png",
    "tuning/size_vs_auc.png",
}


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CHURN_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.delenv("CHURN_DATA_SOURCE", raising=False)
    monkeypatch.chdir(ROOT)
    mlflow.set_tracking_uri(uri)
    yield tmp_path
    mlflow.set_tracking_uri(None)


def _write(path, config: dict) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _runs(experiment: str = "bank-churn"):
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return parents, [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_churn_train_tune__own_table_logs_trials_and_a_retrain_without_search_reproduces_it(
    workspace, capsys
):
    # given a bank's own table and a search of 5 trials
    messy_table(1500).to_csv(workspace / "customers.csv", index=False)
    source = {
        "table": str(workspace / "customers.csv"),
        "id_column": "CustomerId",
        "label_column": "Exited",
        "drop_columns": ["Surname"],
        "categorical": ["Geography", "Gender"],
    }
    base = {"mlflow": {"model_name": "byo-churn"}, "source": source}
    config = _write(workspace / "byo.yaml", base | {"training": {"tuning": {"trials": 5}}})

    # when it is trained with --tune
    assert main(["train", "--config", config, "--tune", "--metrics-json", str(workspace / "m.json")]) == 0
    out = capsys.readouterr().out

    # then every trial is a nested run of the training run, with its parameters and scores
    assert "search                5 trials" in out and "exact SHAP" in out
    (parent,), trials = _runs()
    assert len(trials) == 5
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {parent.info.run_id}
    assert sum(t.data.tags["chosen"] == "true" for t in trials) == 1
    for trial in trials:
        assert {"learning_rate", "num_leaves", "cat_smooth", "min_data_per_group"} <= set(trial.data.params)
        if trial.data.tags["optuna_state"] == "complete":
            assert {"objective", "roc_auc", "log_loss", "tree_leaves", "shap_cost"} <= set(trial.data.metrics)
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "tuning")}
    assert artifacts >= TRIAL_ARTIFACTS - {"tuning/param_importances.png"}, artifacts
    space = mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/tuning/search_space.json")
    assert {"learning_rate", "num_leaves", "cat_smooth", "zero_as_missing"} <= set(space)
    metrics = json.loads((workspace / "m.json").read_text())
    assert metrics["tuning_trials"] == 5 and metrics["shap_rows_per_s"] > 0
    assert metrics["tree_leaves"] <= 4000, "the default explanation ceiling"

    # and the chosen parameters are the registered version's metadata
    tuned = client.get_model_version("byo-churn", "1")
    chosen = json.loads(tuned.tags["churn_params"])
    assert tuned.tags["tuned"] == "true"
    bundle_v1 = mlflow.pyfunc.load_model("models:/byo-churn/1").unwrap_python_model().bundle
    assert bundle_v1.meta["training"]["churn_params"] == chosen
    assert parent.data.params["churn.learning_rate"] == str(chosen["learning_rate"])

    # when the logged retrain block is put in the config and the table is trained without --tune
    retrain = yaml.safe_load(
        mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/tuning/churn_params.yaml")
    )
    assert main(["train", "--config", _write(workspace / "retrain.yaml", base | retrain)]) == 0

    # then the same booster comes out, recorded as not searched
    retrained = client.get_model_version("byo-churn", "2")
    assert retrained.tags["tuned"] == "false"
    assert json.loads(retrained.tags["churn_params"]) == chosen
    bundle_v2 = mlflow.pyfunc.load_model("models:/byo-churn/2").unwrap_python_model().bundle
    assert bundle_v2.churn_booster.model_to_string() == bundle_v1.churn_booster.model_to_string()
    assert bundle_v2.meta["calibrator"] == bundle_v1.meta["calibrator"]


def test_churn_train_tune__bank_sample_is_searched_out_of_time_and_stays_calibrated(workspace, capsys):
    # given the sample bank and a search of 4 trials with a 5-minute budget from the CLI
    config = _write(workspace / "tune.yaml", {"training": {"tuning": {"trials": 4}}})
    metrics_path = workspace / "m.json"
    # when it is trained with --tune-minutes (which implies --tune)
    assert (
        main(["train", "--config", config, "--tune-minutes", "5", "--metrics-json", str(metrics_path)]) == 0
    )
    out = capsys.readouterr().out
    # then the search ran on the one out-of-time fold, its trials are nested runs
    assert "search                4 trials" in out and "on 1 fold(s)" in out
    (parent,), trials = _runs()
    assert len(trials) == 4
    bundle = mlflow.pyfunc.load_model("models:/bank-churn/1").unwrap_python_model().bundle
    tuning = bundle.meta["training"]["tuning"]
    assert tuning["budget"]["minutes"] == 5.0 and tuning["folds"] == 1
    # and the tuned model's calibrated probabilities on the test snapshot are within 0.02 ECE
    metrics = json.loads(metrics_path.read_text())
    assert metrics["ece"] <= 0.02, metrics["ece"]
    assert metrics["tree_leaves"] <= 4000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tune-minutes", "0"], "error: --tune-minutes: Input should be greater than 0"),
        (["--tune", "--engine", "dask"], "error: --tune: the hyperparameter search runs on the local engine"),
    ],
)
def test_churn_train_tune__bad_options_are_one_clear_error(workspace, capsys, args, message):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
