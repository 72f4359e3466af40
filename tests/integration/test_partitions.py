"""The local engine reads a bank partition by partition and gives the whole bank's numbers.

The sample (2,500 customers) is read as customer ranges of 700, so the features job runs as four
partitions in this process; its output must equal `build_features` and `build_labels` on the
whole validated sample, bit for bit, whatever the order of the source's rows.
"""

import logging
import shutil

import pandas as pd
import pytest

from churn.config import AppConfig
from features.build import build_features
from features.io import read_tables
from features.jobs import run_features, validate_source
from features.labels import build_labels, last_confirmable_as_of
from features.sources import RangeParts, WholeParts, open_source
from features.validation import TableValidationError
from tests.conftest import SAMPLE


def _config(config: AppConfig, tmp_path, source, per_partition: int = 700, processes: int = 1) -> AppConfig:
    return config.model_copy(
        update={
            "data": config.data.model_copy(update={"source": str(source)}),
            "output_dir": str(tmp_path / "out"),
            "engine": config.engine.model_copy(
                update={"partition_customers": per_partition, "local_processes": processes}
            ),
        }
    )


@pytest.fixture(scope="module")
def whole(sample, config):
    as_of = last_confirmable_as_of(sample.tables, config.labels)
    products = tuple(config.products)
    return (
        build_features(sample.tables, as_of, config.features, products),
        build_labels(sample.tables, as_of, config.labels, products),
    )


@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "2-worker-processes"])
def test_features__four_customer_ranges_give_the_whole_banks_rows(config, tmp_path, whole, processes):
    summary = run_features(_config(config, tmp_path, SAMPLE, processes=processes))
    assert summary.partitions == 4
    assert "4 customer ranges" in summary.source and "(sorted by customer)" in summary.source
    assert sorted(p.name for p in summary.features_path.iterdir()) == [
        f"part-0000{k}.parquet" for k in range(4)
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(summary.features_path), whole[0], check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(summary.labels_path), whole[1], check_exact=True)
    assert set(summary.stage_seconds) == {"read", "validate", "features", "write"}


def test_features__an_unsorted_source_is_read_by_range_with_a_warning_and_the_same_rows(
    config, tmp_path, whole, caplog
):
    shuffled = tmp_path / "shuffled"
    shutil.copytree(SAMPLE, shuffled)
    for name in ("transactions", "interactions", "balances"):
        frame = pd.read_parquet(shuffled / f"{name}.parquet")
        frame.sample(frac=1.0, random_state=3).to_parquet(shuffled / f"{name}.parquet", row_group_size=5_000)
    with caplog.at_level(logging.WARNING, logger="features.sources"):
        source = open_source(shuffled, 700)
    assert isinstance(source, RangeParts) and not source.sorted_tables
    assert "not sorted by customer_id" in caplog.text
    partitioned = _config(config, tmp_path, shuffled)
    summary = run_features(partitioned)
    # the whole shuffled bank at once: sums run in the source's row order, so they are compared
    # with the same order, not with the sorted sample's
    tables = validate_source(read_tables(shuffled), partitioned).tables
    products = tuple(config.products)
    expected = build_features(tables, summary.as_of, config.features, products)
    pd.testing.assert_frame_equal(pd.read_parquet(summary.features_path), expected, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_parquet(summary.labels_path), build_labels(tables, summary.as_of, config.labels, products)
    )
    pd.testing.assert_frame_equal(expected, whole[0], check_exact=False)  # the same bank


def test_features__rows_of_unknown_customers_at_either_end_are_rejected_not_dropped(config, tmp_path):
    data = tmp_path / "edges"
    shutil.copytree(SAMPLE, data)
    tx = pd.read_parquet(data / "transactions.parquet")
    low, high = tx.iloc[[0]].copy(), tx.iloc[[1]].copy()
    low["customer_id"], high["customer_id"] = 0, 10**9  # below the first range, above the last
    low["transaction_id"], high["transaction_id"] = 10**9, 10**9 + 1
    pd.concat([low, tx, high], ignore_index=True).to_parquet(data / "transactions.parquet")
    summary = run_features(_config(config, tmp_path, data))
    rejects = pd.read_csv(tmp_path / "out" / "rejects" / "transactions.csv")
    assert summary.rejects["transactions"] == 2
    assert sorted(rejects["customer_id"]) == [0, 10**9]
    assert rejects["reason"].tolist() == [
        "customer_id: below minimum 1; customer_id: unknown customer",
        "customer_id: unknown customer",
    ]
    assert sorted(p.name for p in (tmp_path / "out" / "rejects").iterdir())[0] == "balances.csv", (
        "the per-partition reject files are joined and removed"
    )


def test_open_source__csv_and_text_ids_are_read_whole(tmp_path):
    data = tmp_path / "csv"
    data.mkdir()
    for path in SAMPLE.glob("*.parquet"):
        pd.read_parquet(path).to_csv(data / f"{path.stem}.csv", index=False)
    assert isinstance(open_source(data, 700), WholeParts)
    text = tmp_path / "text"
    shutil.copytree(SAMPLE, text)
    customers = pd.read_parquet(text / "customers.parquet")
    customers.astype({"customer_id": str}).to_parquet(text / "customers.parquet")
    assert isinstance(open_source(text, 700), WholeParts)


def test_features__a_fatal_table_error_in_a_worker_process_reaches_the_cli_whole(config, tmp_path, capsys):
    """The error a partition raises in a worker process is the one the in-process engine raises:
    same type, same message (table, column, rule), and a clean CLI error, not a broken pool."""
    from churn.cli import main

    data = tmp_path / "broken"
    shutil.copytree(SAMPLE, data)
    pd.read_parquet(data / "balances.parquet").drop(columns="deposits").to_parquet(data / "balances.parquet")
    errors = []
    for processes in (1, 2):
        with pytest.raises(TableValidationError) as raised:
            run_features(_config(config, tmp_path, data, processes=processes))
        errors.append((raised.value.table, raised.value.column, str(raised.value)))
    assert errors[0] == errors[1] and errors[1][:2] == ("balances", "deposits")
    patch = pytest.MonkeyPatch()
    patch.setenv("CHURN_DATA_SOURCE", str(data))
    patch.setenv("CHURN_OUTPUT_DIR", str(tmp_path / "cli"))
    patch.setenv("CHURN_LOCAL_PROCESSES", "2")
    try:
        assert main(["features"]) != 0
    finally:
        patch.undo()
    err = capsys.readouterr().err
    assert "balances.deposits" in err and "Traceback" not in err


def _first_pass(config, tmp_path, data):
    from churn.engine import LocalRunner
    from features.partition_jobs import open_partitions

    parts = open_partitions(_config(config, tmp_path, data), LocalRunner())
    return parts.months, parts.last_day


def test_open_partitions__the_last_day_from_statistics_equals_the_one_read(config, tmp_path, sample):
    """The first pass takes the last transaction from the Parquet statistics only when it lies
    inside the accepted dates; a row dated after the extract makes it read the times instead."""
    from features.sources import parquet_time_max

    accepted = sample.tables["transactions"]["ts"].max()
    assert parquet_time_max([SAMPLE / "transactions.parquet"], "ts") == accepted
    months, last_day = _first_pass(config, tmp_path, SAMPLE)
    assert last_day == max(months[1], accepted.normalize())

    future = tmp_path / "future"
    shutil.copytree(SAMPLE, future)
    tx = pd.read_parquet(future / "transactions.parquet")
    late = tx.iloc[[0]].assign(transaction_id=10**9, ts=pd.Timestamp("2099-01-01"))
    pd.concat([tx, late], ignore_index=True).to_parquet(future / "transactions.parquet")
    assert parquet_time_max([future / "transactions.parquet"], "ts") == pd.Timestamp("2099-01-01")
    assert _first_pass(config, tmp_path, future) == (months, last_day), "the future row is not data"

    bare = tmp_path / "bare"
    shutil.copytree(SAMPLE, bare)
    tx.to_parquet(bare / "transactions.parquet", write_statistics=False)
    assert parquet_time_max([bare / "transactions.parquet"], "ts") is None
    assert _first_pass(config, tmp_path, bare) == (months, last_day)


def test_training_and_promotion_rows__four_customer_ranges_give_the_whole_banks_rows(
    config, tmp_path, sample
):
    """Training's snapshots, campaign rows and lineage, and promotion's snapshot, read partition
    by partition: bit for bit the whole bank's, with the same content digest."""
    from churn.engine import LocalRunner
    from training.promotion_rows import promotion_rows, promotion_rows_from_tables
    from training.rows import rows_from_tables, training_rows

    ranged = _config(config, tmp_path, SAMPLE)
    expected = rows_from_tables(sample.tables, config)
    actual = training_rows(ranged, LocalRunner())
    assert actual.split == expected.split
    assert list(actual.parts) == ["train", "validation", "test"]
    for name, part in expected.parts.items():
        pd.testing.assert_frame_equal(actual.parts[name], part, check_exact=True)
    assert expected.parts["test"].index.get_level_values("as_of").unique().tolist() == [expected.split.test]
    assert len(expected.campaigns) > 1000 and expected.campaigns["arm"].nunique() > 3
    pd.testing.assert_frame_equal(actual.campaigns, expected.campaigns, check_exact=True)
    pd.testing.assert_frame_equal(actual.counts, expected.counts)
    assert actual.digest == expected.digest
    assert (tmp_path / "out" / "rejects" / "transactions.csv").exists()

    months = sorted(expected.campaigns["as_of"].dt.strftime("%Y-%m").unique())[-3:]
    judged = promotion_rows(ranged, LocalRunner(), months)
    wanted = promotion_rows_from_tables(sample.tables, config, months)
    assert judged.evaluated_on == wanted.evaluated_on
    pd.testing.assert_frame_equal(judged.features, wanted.features, check_exact=True)
    pd.testing.assert_frame_equal(judged.labels, wanted.labels, check_exact=True)
    assert set(wanted.campaigns["as_of"].dt.strftime("%Y-%m")) == set(months)
    pd.testing.assert_frame_equal(judged.campaigns, wanted.campaigns, check_exact=True)


def test_lineage__the_digest_follows_the_content_not_the_partitioning(sample):
    from training.rows import lineage_of, table_hashes

    tables = {name: sample.tables[name] for name in ("customers", "balances")}
    halves = [
        {name: frame[frame["customer_id"] % 2 == parity] for name, frame in tables.items()}
        for parity in (0, 1)
    ]
    whole_counts, whole = lineage_of([table_hashes(tables)])
    counts, digest = lineage_of([table_hashes(part) for part in reversed(halves)])
    assert digest == whole and counts.equals(whole_counts)
    changed = dict(tables, balances=tables["balances"].assign(deposits=tables["balances"]["deposits"] + 1))
    assert lineage_of([table_hashes(changed)])[1] != whole


def test_validate__counts_the_whole_banks_rows_partition_by_partition(
    config, tmp_path, sample, capsys, monkeypatch
):
    from churn.cli import main

    ranged = _config(config, tmp_path, SAMPLE)
    monkeypatch.setattr("churn.cli._config", lambda *_: ranged)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert "4 customer ranges" in out
    for name, frame in sample.tables.items():
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        valid, rejected = (int(v.replace(",", "")) for v in line.split()[1::2][:2])
        assert valid == len(frame), name
        assert rejected == sample.reject_counts[name], name
