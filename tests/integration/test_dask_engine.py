"""The dask engine on a real LocalCluster of 2 worker processes, against the local engine.

The sample is cut into 4 customer partitions (700 customers each), so every job really runs as
several tasks on two workers.
"""

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from churn.cli import main
from churn.cluster import dask_client
from churn.config import AppConfig, load_config
from features.io import read_tables
from features.partitioned import bounds, partition_tables, read_all, read_partition
from features.schema import GLOBAL_TABLES
from tests.conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow

PARTITION = 700


def _config(tmp, name: str, engine: str, **playbook) -> AppConfig:
    config = load_config(
        environ={
            "CHURN_DATA_SOURCE": str(SAMPLE),
            "CHURN_OUTPUT_DIR": str(tmp / name),
            "CHURN_DATABASE_URL": f"sqlite:///{tmp / name / 'churn.db'}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        }
    )
    updates = {
        "engine": config.engine.model_copy(
            update={"kind": engine, "partition_customers": PARTITION, "partitioned_dir": str(tmp / "parts")}
        )
    }
    if playbook:
        updates["playbook"] = config.playbook.model_copy(update=playbook)
    return config.model_copy(update=updates)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One LocalCluster of 2 workers for the module; every job inside reuses its client."""
    tmp = tmp_path_factory.mktemp("dask")
    with dask_client(_config(tmp, "cluster", "dask").engine) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        yield tmp
    mlflow.set_tracking_uri(None)


def test_partition_tables__every_row_lands_in_its_customers_partition(tmp_path, cluster):
    rows = partition_tables(SAMPLE, tmp_path, PARTITION)
    source = read_tables(SAMPLE)
    assert rows == {name: len(frame) for name, frame in source.items()}
    limits = bounds(tmp_path)
    assert len(limits) == 5  # 2,500 customers in partitions of 700
    for k in range(len(limits) - 1):
        for name, frame in read_partition(tmp_path, k).items():
            if name in GLOBAL_TABLES:  # every partition reads it whole
                pd.testing.assert_frame_equal(frame, source[name], check_exact=True)
                continue
            ids = frame["customer_id"]
            assert ids.between(limits[k], limits[k + 1] - 1).all(), name
    whole = read_all(tmp_path)
    for name, frame in source.items():
        key = list(frame.columns[:2])
        expected = frame.sort_values(key, kind="stable").reset_index(drop=True)
        actual = whole[name].sort_values(key, kind="stable").reset_index(drop=True)
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)


def test_features__dask_engine_gives_exactly_the_local_numbers(cluster):
    from features.jobs import run_features

    local = run_features(_config(cluster, "local", "local"))
    distributed = run_features(_config(cluster, "dask", "dask"))
    assert distributed.features_path.is_dir(), "a partitioned Parquet dataset"
    assert len(list(distributed.features_path.glob("part-*.parquet"))) == 4
    for local_path, dask_path in (
        (local.features_path, distributed.features_path),
        (local.labels_path, distributed.labels_path),
    ):
        expected, actual = pd.read_parquet(local_path), pd.read_parquet(dask_path)
        pd.testing.assert_frame_equal(actual.sort_index(), expected, check_exact=True)
    assert distributed.lines()[:6] == local.lines()[:6]


def test_promotion_rows__the_dask_engine_reads_the_whole_banks_snapshot_and_campaigns(cluster):
    from churn.engine import DaskRunner
    from features.jobs import load_validated
    from training.promotion_rows import promotion_rows, promotion_rows_from_tables

    local_config, dask_config = _config(cluster, "local", "local"), _config(cluster, "dask", "dask")
    tables = load_validated(local_config).tables
    months = sorted(tables["contacts"]["ts"].dt.strftime("%Y-%m").unique())[-8:-4]
    expected = promotion_rows_from_tables(tables, local_config, months)
    with dask_client(dask_config.engine) as client:
        actual = promotion_rows(dask_config, DaskRunner(client), months)
    assert actual.evaluated_on == expected.evaluated_on
    assert (
        len(expected.campaigns) > 100 and expected.campaigns["as_of"].dt.strftime("%Y-%m").isin(months).all()
    )
    for got, want in (
        (actual.features, expected.features),
        (actual.labels, expected.labels),
        (actual.campaigns, expected.campaigns),
    ):
        pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.fixture(scope="module")
def dask_trained(cluster):
    """A bundle trained on the cluster and registered (challenger): the training test reads it and
    the daily-list test promotes it rather than training one more."""
    from training.jobs import run_training

    config = _config(cluster, "dask", "dask")
    # lightgbm.dask has no early stopping: every round is trained, then cut; fewer rounds keep
    # the test short (the local models stop at about 150 and 320 trees)
    training = config.training.model_copy(
        update={
            "churn": config.training.churn.model_copy(update={"num_boost_round": 250}),
            "next_product": config.training.next_product.model_copy(update={"num_boost_round": 150}),
        }
    )
    config = config.model_copy(update={"training": training})
    return config, run_training(config)


def test_train__dask_engine_logs_and_registers_like_the_local_path(dask_trained):
    from features.snapshots import build_training_set, snapshot_dates
    from features.validation import validate_tables
    from training.split import out_of_time_split

    config, summary = dask_trained
    client = mlflow.MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.data.tags["engine"] == "dask"
    version = client.get_model_version_by_alias(config.mlflow.model_name, "challenger")
    assert str(version.version) == summary.version and version.run_id == summary.run_id
    artifacts = {a.path for a in client.list_artifacts(summary.run_id, "reference")}
    assert "reference/reference_sample.parquet" in artifacts
    metrics = run.data.metrics
    # a working churn model: the local engine reaches 0.80 here; the distributed fit depends on
    # which worker holds which partition and has landed on 0.717 (of a test month of ~2,000 rows)
    assert metrics["roc_auc"] > 0.70, "not a working churn model"
    assert metrics["ece"] < 0.05

    # the same training rows as the local engine builds
    tables = validate_tables(
        read_tables(SAMPLE), extract_date=pd.Timestamp.today().normalize(), products=tuple(config.products)
    ).tables
    split = out_of_time_split(
        snapshot_dates(tables, config.labels, config.snapshots.count),
        config.labels.horizon_days,
        config.training.validation_snapshots,
    )
    dates = [*split.train, *split.validation, split.test]
    stacked = build_training_set(tables, dates, config.features, config.labels, tuple(config.products))
    assert metrics["train_rows"] + metrics["validation_rows"] + metrics["test_rows"] == len(stacked)
    assert metrics["test_positives"] == stacked.loc[split.test, "churn"].sum()

    # the registered bundle scores like any other: the API and the daily job can load it
    from serving.registry import load_bundle

    bundle = load_bundle(config, summary.version)
    assert bundle.churn_booster.num_trees() == metrics["num_trees"]
    # the uplift models too, from the campaign rows the local engine's partition work gives
    assert bundle.uplift is not None and "uplift_qini" in metrics
    # and the lineage of the validated tables, whatever the partitions
    from training.rows import lineage_of, table_hashes

    logged = run.inputs.dataset_inputs[0].dataset
    assert logged.digest == lineage_of([table_hashes(tables)])[1]


def _risk_list(config: AppConfig) -> pd.DataFrame:
    from serving.list_job import run_daily_list

    run, _ = run_daily_list(config, pd.Timestamp("2026-11-01"))
    folder = run.out_dir
    table = pd.read_parquet(folder / "risk_list.parquet").set_index("customer_id").sort_index()
    assert len(pd.read_csv(folder / "risk_list.csv")) == len(table)
    return table


def test_daily_list__dask_engine_matches_local_with_a_global_top_n(cluster, dask_trained):
    """Small team capacities: a selection per partition would contact up to 4 times too many."""
    capacity = {
        "relationship_managers": 2,
        "savings_desk": 2,
        "retention_team": 3,
        "digital_team": 3,
        "call_centre": 3,
    }
    local_config = _config(
        cluster, "list-local", "local", capacity=capacity, per_branch={"branch_managers": 1}
    )
    assert main_env(local_config, ["promote", "--force"]) == 0  # the bundle trained on the cluster
    dask_config = local_config.model_copy(
        update={
            "output_dir": str(cluster / "list-dask"),
            "database_url": f"sqlite:///{cluster / 'list-dask' / 'churn.db'}",
            "engine": local_config.engine.model_copy(update={"kind": "dask", "db_batch_rows": 300}),
        }
    )
    pooled_config = local_config.model_copy(
        update={
            "output_dir": str(cluster / "list-pooled"),
            "database_url": f"sqlite:///{cluster / 'list-pooled' / 'churn.db'}",
            "engine": local_config.engine.model_copy(update={"local_processes": 2}),
        }
    )
    expected = _risk_list(local_config)
    actual = _risk_list(dask_config)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)
    # the local engine's partitions in 2 worker processes: the same list, bit for bit
    pd.testing.assert_frame_equal(_risk_list(pooled_config), expected, check_exact=True)
    contacted = actual[actual["contact"].fillna(False).astype(bool)]
    assert 0 < len(contacted) <= sum(capacity.values()) + actual["branch_id"].nunique()
    assert sorted(contacted["list_rank"]) == list(range(1, len(contacted) + 1))
    over = actual["contact_rule"].fillna("").str.startswith("over the daily capacity")
    assert over.sum() > 0, "the capacities bind, so the global selection is what is tested"

    # the database holds the same rows, written in batches of 300
    counts = {}
    for name, config in (("local", local_config), ("dask", dask_config), ("pooled", pooled_config)):
        with sa.create_engine(config.database_url).connect() as connection:
            counts[name] = [
                connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
                for table in ("risk_list", "customer_features", "customer_context", "contact_history")
            ]
    assert counts["dask"] == counts["local"] == counts["pooled"]
    assert counts["dask"][:3] == [2500, *[int((expected["status"] == "scored").sum())] * 2]


def main_env(config: AppConfig, argv: list[str]) -> int:
    """The CLI with the config's locations in the environment (the cluster fixture stays active)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CHURN_OUTPUT_DIR", config.output_dir)
    patch.setenv("CHURN_DATABASE_URL", config.database_url)
    patch.setenv("MLFLOW_TRACKING_URI", config.mlflow.tracking_uri)
    patch.chdir(ROOT)
    try:
        return main(argv)
    finally:
        patch.undo()


def test_cli__engine_option_is_checked(capsys):
    assert main(["features", "--engine", "spark"]) == 2
    assert "--engine: 'spark' is not one of local, dask" in capsys.readouterr().err
    assert main(["features", "--engine", "local", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--scheduler: a Dask scheduler needs --engine dask" in capsys.readouterr().err
