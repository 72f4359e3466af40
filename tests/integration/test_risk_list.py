"""The daily risk list job for real: champion from the registry, files, database, re-runs."""

import re

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from churn.cli import main
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def env(tmp_path_factory, api_workspace):
    """Its own outputs and database, with the champion the API tests trained (read only)."""
    tmp = tmp_path_factory.mktemp("risk")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{api_workspace / 'mlflow.db'}")
    patch.setenv("CHURN_OUTPUT_DIR", str(tmp / "out"))
    patch.setenv("CHURN_DATABASE_URL", f"sqlite:///{tmp / 'out' / 'churn.db'}")
    patch.chdir(ROOT)
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


def test_churn_score__files_and_html_page_are_written(env, capsys):
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    folder = env / "out" / "risk_lists" / "2026-11-01"
    parquet = pd.read_parquet(folder / "risk_list.parquet")
    assert len(parquet) == len(pd.read_csv(folder / "risk_list.csv")) == 2500
    page = (folder / "summary.html").read_text()
    for heading in (
        "Risk tiers",
        "Value at risk by segment",
        "Value at risk by region",
        "First reasons: the causes",
        "Why: the kind of churn",
        "Planned actions",
        "Trigger lists",
        "What past campaigns kept, against their control groups",
    ):
        assert heading in page
    assert folder.is_symlink(), "the date is a link to its published version"
    assert len(list((env / "out" / "risk_lists" / ".versions" / "2026-11-01").iterdir())) == 1
    assert not list((env / "out" / "risk_lists").glob(".*.link")), "no half-made link left"
    assert "customer 1" not in capsys.readouterr().out, "the summary names no customer id"


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
        from serving.list_job import run_daily_list

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
    # a contact dated in year 1 (PostgreSQL can hold it; pandas cannot) does not stop the job
    _insert_recorded_contact(postgres_url, "other-door-pg", "0001-01-01 00:00:00")
    assert main(["score", "--as-of", "2026-11-01"]) == 0


def _insert_recorded_contact(url: str, event_id: str, contacted_at: str) -> None:
    """A contact written straight into the database, as another system (another door) might."""
    from serving.store import ServingStore

    store = ServingStore(url)
    with store.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO contact_history (event_id, customer_id, contacted_at, source, channel, "
                "control_group, reached, customer_status, recorded_at) "
                "VALUES (:e, 100001, :t, 'api', 'phone', false, true, 'unknown', :t)"
            ),
            {"e": event_id, "t": contacted_at},
        )
    store.dispose()


def test_churn_score__survives_impossible_dates_already_in_the_database(env, capsys):
    # given rows dated 0001 and 9999 in the contact history (no API accepts them now)
    url = f"sqlite:///{env / 'out' / 'churn.db'}"
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    _insert_recorded_contact(url, "other-door-1", "0001-01-01 00:00:00.000000")
    _insert_recorded_contact(url, "other-door-2", "9999-12-31 00:00:00.000000")
    capsys.readouterr()
    # when the daily job runs, then it keeps going, says so, and sets the rows aside with a reason
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert "recorded contacts     2 rejected" in out
    rejects = pd.read_csv(env / "out" / "rejects" / "contact_history.csv")
    assert sorted(rejects["event_id"]) == ["other-door-1", "other-door-2"]
    assert rejects["reason"].str.startswith("contacted_at: outside 1900-01-01").all()
    run = pd.read_json(env / "out" / "risk_lists" / "2026-11-01" / "run.json", typ="series")
    assert run["rejects"]["contact_history"] == 2 and run["seconds"] > 0
    # what values the playbook's action is on record, with why: the sample's folds are too small
    # for the playbook-choice model's cross-fitted figure, so `auto` does not trust that model
    said = "per_action (auto: the model of the playbook's choice has no cross-fitted figure)"
    assert run["ranking"]["playbook_effect"].startswith(said)
    assert f"action valued by      {said}" in out


@pytest.mark.parametrize("as_of", ["2035-01-01", "2020-01-01"])
def test_churn_score__a_date_outside_the_data_is_an_error_not_a_list(env, capsys, as_of):
    assert main(["score", "--as-of", as_of]) == 2
    assert f"--as-of: {as_of} is outside what the data covers: from 2024-12-01" in capsys.readouterr().err


def test_churn_purge__erases_one_customer_everywhere_and_records_it_by_pseudonym(env, capsys, monkeypatch):
    from serving.auth import init_secrets_file, load_secrets, pseudonymise

    secrets = env / "secrets.json"
    init_secrets_file(secrets)
    monkeypatch.setenv("CHURN_SECRETS_FILE", str(secrets))
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    with _db(env).connect() as connection:
        customer = int(connection.execute(sa.text("SELECT customer_id FROM risk_list LIMIT 1")).scalar())
    capsys.readouterr()
    # when the customer asks to be erased
    assert main(["purge", "--customer", str(customer)]) == 0
    out = capsys.readouterr().out
    assert re.match(
        r"erased the customer: risk_list [1-9]\d*, trigger_list \d+, customer_features 1, customer_context 1",
        out,
    ), out
    assert str(customer) not in out, "the output names what was removed, not whom"
    # then no list, table or file of the outputs holds them, and the erasure is on record
    with _db(env).connect() as connection:
        for table in ("risk_list", "customer_features", "customer_context", "contact_history"):
            n = connection.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE customer_id = :c"), {"c": customer}
            )
            assert n.scalar() == 0, table
        recorded = connection.execute(sa.text("SELECT customer_key FROM erasure_log")).scalars().all()
    key = load_secrets(secrets).pseudonym_key.get_secret_value()
    assert recorded == [pseudonymise(key, customer)]
    folder = env / "out" / "risk_lists" / "2026-11-01"
    assert customer not in set(pd.read_csv(folder / "risk_list.csv")["customer_id"])
    assert customer not in set(pd.read_parquet(folder / "risk_list.parquet")["customer_id"])
    assert customer not in set(pd.read_parquet(folder / "features.parquet").index)


def test_churn_purge__expired_lists_and_logs_go_and_the_daily_job_applies_it(env, capsys, tmp_path):
    assert main(["score", "--as-of", "2026-10-01"]) == 0
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    config = tmp_path / "retention.yaml"
    # lists older than 40 days from today (2026-12-01 in this workplace's clock, or later) go
    config.write_text("privacy:\n  retention_days:\n    risk_lists: 40\n")
    capsys.readouterr()
    assert main(["purge", "--expired", "--config", str(config)]) == 0
    assert "risk_lists" in capsys.readouterr().out
    lists = env / "out" / "risk_lists"
    today = pd.Timestamp.now().normalize()
    kept = sorted(p.name for p in lists.glob("????-??-??"))
    assert all(pd.Timestamp(d) >= today - pd.Timedelta(days=40) for d in kept)
    assert not (lists / "2026-10-01").exists() and not (lists / ".versions" / "2026-10-01").exists()
    with _db(env).connect() as connection:
        dates = connection.execute(sa.text("SELECT DISTINCT as_of FROM risk_list")).scalars().all()
    assert "2026-10-01" not in dates
    assert main(["purge"]) == 2, "one of --customer or --expired"
