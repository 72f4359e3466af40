"""Training on a customer-level table the bank brings, configured only through YAML."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from churn.cli import main
from tests.conftest import ROOT


def messy_table(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    """A synthetic table shaped like common bank-churn exports, with the usual mess."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    products = rng.integers(1, 5, n)
    active = rng.random(n) < 0.5
    geography = rng.choice(["France", "Germany", "Spain"], n)
    logit = -3.0 + 0.06 * (age - 40) - 0.9 * active + 0.8 * (geography == "Germany") + 0.6 * (products == 1)
    exited = rng.random(n) < 1 / (1 + np.exp(-logit))
    balance = np.round(rng.gamma(2, 40_000, n), 2).astype(str).astype(object)
    balance[rng.random(n) < 0.03] = ""  # blanks
    balance[rng.random(n) < 0.01] = "n/a"  # stray text
    geo = geography.astype(object)
    shouted = rng.random(n) < 0.2
    geo[shouted] = np.char.upper(geography[shouted].astype(str))  # mixed case
    return pd.DataFrame(
        {
            "RowNumber": np.arange(1, n + 1),
            "CustomerId": np.arange(15_000_000, 15_000_000 + n),
            "Surname": [f"S{v:06d}" for v in rng.integers(0, 10**6, n)],
            "Geography": geo,
            "Gender": rng.choice(["Female", "Male"], n),
            "Age": age,
            "Balance": balance,
            "NumOfProducts": products,
            "IsActiveMember": active.astype(int),
            "BankCode": "B01",  # constant
            "ComplaintClosedFlag": np.where(exited, "closed", "open"),  # recorded after the fact: a leak
            "Exited": exited.astype(int),
        }
    )


@pytest.fixture()
def byo(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CHURN_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.chdir(ROOT)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")

    def write(frame: pd.DataFrame | None, **source) -> str:
        """Write `frame` as the source CSV (unless `source` names its own table) and the config."""
        if frame is not None:
            frame.to_csv(tmp_path / "customers.csv", index=False)
        config = {
            "mlflow": {"model_name": "byo-churn"},
            "source": {
                "table": str(tmp_path / "customers.csv"),
                "id_column": "CustomerId",
                "label_column": "Exited",
                "positive_label": 1,
                "drop_columns": ["Surname"],
                "categorical": ["Geography", "Gender"],
            }
            | source,
        }
        path = tmp_path / "byo.yaml"
        path.write_text(yaml.safe_dump(config))
        return str(path)

    return write, tmp_path


def test_churn_train__own_table_trains_registers_and_reports_coercions(byo, capsys):
    write, tmp = byo
    # 4,000 rows: the first model must pass the calibration gate (ECE <= 0.05), and on 1,500 rows the
    # ECE of either tree size lands on both sides of it by chance (0.020-0.069 over eight seeds)
    config = write(messy_table(4000))
    assert main(["train", "--config", config, "--metrics-json", str(tmp / "m.json"), "--cv", "3"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp / "m.json").read_text())
    assert metrics["roc_auc"] > 0.7 and 0 < metrics["brier"] < 0.25 and 0 < metrics["pr_auc"] <= 1
    assert 0.6 < metrics["cv_roc_auc_mean"] < 1 and metrics["cv_roc_auc_std"] > 0
    report = metrics["data_report"]
    assert "leaks the label" in report["not_used"]["ComplaintClosedFlag"]
    assert report["not_used"]["BankCode"] == "constant"
    assert "identifier" in report["not_used"]["RowNumber"]
    assert report["not_used"]["Surname"] == "dropped by the config"
    assert "non-numeric value(s) treated as missing" in report["coerced"]["Balance"]
    assert "case and spaces normalised" in report["coerced"]["Geography"]
    assert "leaks the label" in out
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("byo-churn", "challenger").version) == "1"
    params = client.get_run(client.get_model_version_by_alias("byo-churn", "challenger").run_id).data.params
    assert "churn.num_leaves" in params and not any(k.startswith("drivers.") for k in params), (
        "a table's reasons come from the churn model: no reasons' model is claimed"
    )

    # the registered pyfunc scores rows as a CRM would send them, mixed case included
    model = mlflow.pyfunc.load_model("models:/byo-churn@challenger")
    rows = pd.DataFrame(
        {
            "Geography": ["GERMANY", "spain"],
            "Gender": ["Male", "Female"],
            "Age": [70.0, 25.0],
            "Balance": [50_000.0, np.nan],
            "NumOfProducts": [1.0, 2.0],
            "IsActiveMember": [0.0, 1.0],
        }
    )
    scores = model.predict(rows)["churn_probability"]
    assert scores.iloc[0] > scores.iloc[1], "an old, inactive, single-product German customer is riskier"

    assert main(["promote", "--config", config]) == 0
    assert "the first model passes the sanity gates and becomes champion" in capsys.readouterr().out


def test_churn_train__own_table_with_snapshots_is_split_out_of_time(byo, capsys):
    write, tmp = byo
    table = messy_table(1800)
    table["SnapshotMonth"] = (
        pd.date_range("2025-01-01", periods=6, freq="MS").repeat(300).strftime("%Y-%m-%d")
    )
    assert main(["train", "--config", write(table, snapshot_column="SnapshotMonth")]) == 0
    assert (
        "out of time: train before 2025-05-01; validation 2025-05-01..2025-05-01; test from 2025-06-01"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("change", "source", "message"),
    [
        (
            lambda t: t.drop(columns="Exited"),
            {},
            "Exited: column named in the source config is not in the table",
        ),
        (
            lambda t: t.assign(Exited=np.arange(len(t)) % 3),
            {},
            "Exited: label is not binary (3 distinct values",
        ),
        (
            lambda t: t,
            {"positive_label": "Yes"},
            "Exited: positive_label 'Yes' is not one of the label's values (0, 1)",
        ),
        (
            lambda t: t.assign(Exited=(np.arange(len(t)) < 5).astype(int)),
            {},
            "too few positives or negatives to train (5 positive",
        ),
        (
            lambda t: t,
            {"categorical": ["Country"]},
            "Country: column named in the source config is not in the table",
        ),
    ],
)
def test_churn_train__bad_table_or_config_is_a_clear_error(byo, capsys, change, source, message):
    write, _ = byo
    assert main(["train", "--config", write(change(messy_table(400)), **source)]) == 2
    assert message in capsys.readouterr().err


def test_churn_train__missing_file_is_a_clear_error(byo, capsys):
    write, tmp = byo
    config = write(messy_table(50))
    (tmp / "customers.csv").unlink()
    assert main(["train", "--config", config]) == 2
    assert "source.table: file" in capsys.readouterr().err


def test_churn_train__the_feature_pipelines_output_is_one_such_table(byo, sample, config, products, capsys):
    """The generated bank goes through the same path: its stacked snapshots are a customer-month table."""
    from features.snapshots import build_training_set, snapshot_dates

    write, tmp = byo
    dates = snapshot_dates(sample.tables, config.labels, 6)
    stacked = build_training_set(sample.tables, dates, config.features, config.labels, products).reset_index()
    stacked["as_of"] = stacked["as_of"].dt.strftime("%Y-%m-%d")
    stacked.to_parquet(tmp / "snapshots.parquet", index=False)
    path = write(
        None,
        table=str(tmp / "snapshots.parquet"),
        id_column="customer_id",
        label_column="churn",
        snapshot_column="as_of",
        drop_columns=["churn_date", "next_product"],
        categorical=["segment", "region", "income_band"],
    )
    assert main(["train", "--config", path, "--metrics-json", str(tmp / "m.json")]) == 0
    metrics = json.loads((tmp / "m.json").read_text())
    assert metrics["roc_auc"] > 0.65
    assert "out of time" in capsys.readouterr().out


def test_churn_promote__own_table_without_its_label_is_a_clear_error(byo, capsys):
    write, _ = byo
    assert main(["train", "--config", write(messy_table(400))]) == 0
    config = write(messy_table(400).drop(columns="Exited"))
    assert main(["promote", "--config", config]) == 2
    assert "Exited: column named in the source config is not in the table" in capsys.readouterr().err
