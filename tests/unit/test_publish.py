"""Publishing a day's list: files and database agree at every step at which a run can stop."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from serving.publish import finish_version, new_version, publish, published_version, reconcile, write_database


def _batch(customers: list[int]):
    table = pd.DataFrame({"customer_id": customers, "status": "scored", "churn_probability": 0.5})
    features = pd.DataFrame(
        {"tenure_days": [100] * len(customers)}, index=pd.Index(customers, name="customer_id")
    )
    context = pd.DataFrame(
        {
            "do_not_contact": False,
            "branch_id": "BR001",
            "segment": "mass",
            "region": "North",
            "join_date": pd.Timestamp("2020-01-01"),
        },
        index=features.index,
    )
    contacts = pd.DataFrame(
        {"contact_id": [], "customer_id": [], "ts": [], "channel": [], "control_group": [], "outcome": []}
    )
    return table, features, context, contacts


def _run(out, url, customers, until="published"):
    """One daily run's publishing steps, stopping after `until`."""
    meta = {
        "as_of": "2026-11-01",
        "model_version": "1",
        "scored": len(customers),
        "excluded": 0,
        "contacts_planned": 0,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    folder = new_version(out, "2026-11-01")
    pd.DataFrame({"customer_id": customers}).to_csv(folder / "risk_list.csv", index=False)
    finish_version(folder, meta, "<html></html>")
    if until == "files":
        return folder
    write_database([_batch(customers)], meta, url)
    if until == "database":
        return folder
    publish(folder)
    return folder


def _database_customers(url) -> list[int]:
    with sa.create_engine(url).connect() as connection:
        return [r[0] for r in connection.execute(sa.text("SELECT customer_id FROM risk_list ORDER BY 1"))]


def _file_customers(out) -> list[int]:
    return pd.read_csv(out / "2026-11-01" / "risk_list.csv")["customer_id"].tolist()


@pytest.fixture()
def published(tmp_path):
    out, url = tmp_path / "risk_lists", f"sqlite:///{tmp_path / 'churn.db'}"
    _run(out, url, [1, 2])
    return out, url


def test_publish__the_date_is_a_link_to_a_complete_version(published):
    out, url = published
    assert (out / "2026-11-01").is_symlink()
    run = json.loads((out / "2026-11-01" / "run.json").read_text())
    assert run["files_version"] == published_version(out, "2026-11-01")
    assert _file_customers(out) == _database_customers(url) == [1, 2]


@pytest.mark.parametrize(
    ("until", "expected"),
    [("files", [1, 2]), ("database", [3, 4]), ("published", [3, 4])],
)
def test_reconcile__after_a_run_stops_at_any_step_files_and_database_agree(published, until, expected):
    out, url = published
    # given a second run that stopped after `until`
    _run(out, url, [3, 4], until=until)
    # when the next run starts, then both are old, or both are new
    reconcile(out, url)
    assert _file_customers(out) == _database_customers(url) == expected
    assert len(list((out / ".versions" / "2026-11-01").iterdir())) == 1, "no version is left behind"


def test_reconcile__a_first_run_stopped_before_its_commit_leaves_nothing(tmp_path):
    out, url = tmp_path / "risk_lists", f"sqlite:///{tmp_path / 'churn.db'}"
    _run(out, url, [1], until="files")
    assert reconcile(out, url) == []
    assert not (out / "2026-11-01").exists() and not (out / ".versions" / "2026-11-01").exists()
