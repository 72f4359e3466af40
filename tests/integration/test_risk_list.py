"""The daily risk list job for real: champion from the registry, files, database, re-runs."""

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from churn.cli import main
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("risk")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    patch.setenv("CHURN_OUTPUT_DIR", str(tmp / "out"))
    patch.setenv("CHURN_DATABASE_URL", f"sqlite:///{tmp / 'out' / 'churn.db'}")
    patch.chdir(ROOT)
    assert main(["train"]) == 0 and main(["promote"]) == 0
    yield tmp
    patch.undo()
    mlflow.set_tracking_uri(None)


def _db(tmp):
    return sa.create_engine(f"sqlite:///{tmp / 'out' / 'churn.db'}")


def test_churn_score__every_customer_is_listed_or_excluded_once(env, sample, capsys):
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert "2500 in all: " in out
    with _db(env).connect() as connection:
        rows = pd.read_sql("SELECT * FROM risk_list WHERE as_of = '2026-11-01'", connection)
    assert rows["customer_id"].is_unique
    assert set(rows["customer_id"]) == set(sample["customers"]["customer_id"]), "nothing dropped silently"
    excluded = rows[rows["status"] == "excluded"]
    assert excluded["exclusion_reason"].notna().all()
    assert rows.loc[rows["status"] == "scored", "contact_rule"].notna().all()
    contacted = rows[rows["contact"] == 1]
    assert len(contacted) > 0 and contacted["list_rank"].notna().all()


def test_churn_score__files_and_html_page_are_written(env):
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    folder = env / "out" / "risk_lists" / "2026-11-01"
    parquet = pd.read_parquet(folder / "risk_list.parquet")
    assert len(parquet) == len(pd.read_csv(folder / "risk_list.csv")) == 2500
    page = (folder / "summary.html").read_text()
    for heading in (
        "Risk tiers",
        "Value at risk by segment",
        "Value at risk by region",
        "Top reasons",
        "Planned actions",
    ):
        assert heading in page
    assert not list((env / "out" / "risk_lists").glob(".*writing")), "no half-written folder left"


def test_churn_score__rerun_replaces_the_date_without_duplicates(env):
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    assert main(["score", "--as-of", "2026-10-01"]) == 0
    with _db(env).connect() as connection:
        counts = pd.read_sql("SELECT as_of, COUNT(*) AS n FROM risk_list GROUP BY as_of", connection)
        runs = pd.read_sql("SELECT as_of, model_version FROM risk_list_runs", connection)
        latest = pd.read_sql("SELECT DISTINCT as_of FROM customer_features", connection)
    assert dict(zip(counts["as_of"], counts["n"], strict=True)) == {"2026-10-01": 2500, "2026-11-01": 2500}
    assert sorted(runs["as_of"]) == ["2026-10-01", "2026-11-01"]
    assert latest["as_of"].tolist() == ["2026-10-01"], (
        "the API looks customers up in the latest run's features"
    )


def test_churn_score__a_failed_write_leaves_the_previous_list_intact(env, monkeypatch, capsys):
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    original = pd.DataFrame.to_sql

    def failing(self, name, *args, **kwargs):
        if name == "risk_list":  # right after this date's rows were deleted, in the same transaction
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_sql", failing)
    with pytest.raises(sa.exc.OperationalError):
        from churn.config import load_config
        from serving.risk_list import run_daily_list

        run_daily_list(load_config(), pd.Timestamp("2026-11-01"))
    with _db(env).connect() as connection:
        n = connection.execute(sa.text("SELECT COUNT(*) FROM risk_list WHERE as_of = '2026-11-01'")).scalar()
    assert n == 2500, "the delete rolled back with the failed insert"


@pytest.mark.postgres
def test_churn_score__writes_and_replaces_the_list_in_postgresql(env, postgres_url, monkeypatch):
    monkeypatch.setenv("CHURN_DATABASE_URL", postgres_url)
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            n = connection.execute(
                sa.text("SELECT COUNT(*) FROM risk_list WHERE as_of = '2026-11-01'")
            ).scalar()
            runs = connection.execute(sa.text("SELECT COUNT(*) FROM risk_list_runs")).scalar()
            contacted = connection.execute(sa.text("SELECT COUNT(*) FROM risk_list WHERE contact")).scalar()
    finally:
        engine.dispose()
    assert (n, runs) == (2500, 1)
    assert contacted > 0, "booleans survive the round trip"
