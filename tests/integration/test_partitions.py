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
from tests.conftest import SAMPLE


def _config(config: AppConfig, tmp_path, source, per_partition: int = 700) -> AppConfig:
    return config.model_copy(
        update={
            "data": config.data.model_copy(update={"source": str(source)}),
            "output_dir": str(tmp_path / "out"),
            "engine": config.engine.model_copy(update={"partition_customers": per_partition}),
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


def test_features__four_customer_ranges_give_the_whole_banks_rows(config, tmp_path, whole):
    summary = run_features(_config(config, tmp_path, SAMPLE))
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
