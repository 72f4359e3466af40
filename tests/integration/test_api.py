"""The scoring API: the service class called directly, and its ASGI app through a test client.

The session's shared champion and daily list (2026-11-01), copied into a workspace of this
module's own (`own_api_env`) before any other test records an outcome or moves the champion; the
real `bentoml serve` process is tested in test_api_server.py.
"""

from __future__ import annotations

import json
import math
import sqlite3

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from serving import api_models as m
from serving.auth import pseudonymise
from tests.integration.conftest import PSEUDONYM, READ, WRITE, auth


@pytest.fixture(scope="module")
def env(own_api_env):
    return own_api_env


@pytest.fixture(scope="module")
def service(env):
    from serving.service import ChurnService

    svc = ChurnService()
    yield svc
    svc.shutdown()


@pytest.fixture(scope="module")
def risk_list(env):
    with sa.create_engine(f"sqlite:///{env / 'out' / 'churn.db'}").connect() as connection:
        return pd.read_sql("SELECT * FROM risk_list WHERE status = 'scored'", connection).set_index(
            "customer_id"
        )


def _error(response) -> tuple[int, str]:
    assert isinstance(response, JSONResponse), response
    return response.status_code, json.loads(response.body)["error"]


# -- the class, called directly ---------------------------------------------------------------------
def test_score_by_id__same_numbers_as_the_daily_list(service, risk_list):
    ids = risk_list.sort_values("churn_probability").index[-30:].tolist()
    result = service.score(customer_ids=ids)
    assert [s.customer_id for s in result.scores] == ids and not result.errors
    assert result.features_as_of == "2026-11-01"
    for score in result.scores:
        row = risk_list.loc[score.customer_id]
        assert score.churn_probability == pytest.approx(row["churn_probability"], rel=1e-12)
        assert score.value_at_risk == pytest.approx(row["value_at_risk"], rel=1e-12)
        assert [r.code for r in score.reasons] == [
            row[f"reason_{k}_code"] for k in (1, 2, 3) if row[f"reason_{k}_code"] is not None
        ]
        assert score.action.code == row["action"]
        assert score.next_best_products[0].product == row["next_product_1"]


def test_score_by_id__unknown_ids_are_item_errors_not_a_failed_request(service, risk_list):
    known = int(risk_list.index[0])
    result = service.score(customer_ids=[999_999_999, known])
    assert [s.customer_id for s in result.scores] == [known]
    assert result.scores[0].index == 1
    assert [(e.index, e.customer_id) for e in result.errors] == [(0, 999_999_999)]
    assert "unknown customer" in result.errors[0].error


def test_score_rows__a_customers_own_features_give_the_stored_score(service, risk_list, env):
    customer = int(risk_list["churn_probability"].idxmax())
    with sa.create_engine(f"sqlite:///{env / 'out' / 'churn.db'}").connect() as connection:
        stored = pd.read_sql(f"SELECT * FROM customer_features WHERE customer_id = {customer}", connection)
    features = stored.drop(columns=["customer_id", "as_of"]).iloc[0].to_dict()
    features = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in features.items()}
    by_row = service.score(rows=[m.FeatureRow(features=features, customer_id=customer)])
    by_id = service.score(customer_ids=[customer])
    assert by_row.scores[0].churn_probability == pytest.approx(by_id.scores[0].churn_probability, rel=1e-12)
    assert by_row.scores[0].contact_rule == by_id.scores[0].contact_rule

    # a what-if: one more unresolved complaint never lowers the risk (monotone constraint)
    worse = features | {"unresolved_complaints": features["unresolved_complaints"] + 1}
    what_if = service.score(rows=[m.FeatureRow(features=worse, segment="mass", region="Capital")])
    assert what_if.scores[0].customer_id is None
    assert what_if.scores[0].churn_probability >= by_row.scores[0].churn_probability


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"region": "Atlantis"}, "rows[0].features.region: unknown category (expected one of Capital,"),
        ({"not_a_feature": 1.0}, "rows[0].features.not_a_feature: not a feature of the model"),
        ({"tenure_days": "long"}, "rows[0].features.tenure_days: must be a number"),
        ({"tenure_days": "12.5"}, "rows[0].features.tenure_days: must be a number"),
        ({"tenure_days": -100_000}, "rows[0].features.tenure_days: below 0, the smallest value"),
        ({"external_out_share_90d": 1.5}, "rows[0].features.external_out_share_90d: above 1, the largest"),
    ],
)
def test_score_rows__bad_feature_values_are_400s_naming_the_field(service, risk_list, env, change, message):
    with sa.create_engine(f"sqlite:///{env / 'out' / 'churn.db'}").connect() as connection:
        stored = pd.read_sql("SELECT * FROM customer_features LIMIT 1", connection)
    features = stored.drop(columns=["customer_id", "as_of"]).iloc[0].to_dict()
    features = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in features.items()}
    status, error = _error(service.score(rows=[m.FeatureRow(features=features | change)]))
    assert status == 400 and error.startswith(message)


def test_score__more_rows_than_the_batch_limit_is_a_400(service):
    status, error = _error(service.score(customer_ids=list(range(1, 52))))
    assert status == 400 and error == "customer_ids: 51 items, more than the limit of 50 per request"


def test_explain__contributions_add_up_to_the_score(service, risk_list):
    customer = int(risk_list["churn_probability"].idxmax())
    explanation = service.explain(customer_id=customer)
    total = explanation.base_value + sum(c.contribution for c in explanation.contributions)
    assert total == pytest.approx(explanation.margin, abs=1e-9)
    assert len(explanation.contributions) == 86
    sizes = [abs(c.contribution) for c in explanation.contributions]
    assert sizes == sorted(sizes, reverse=True)
    assert explanation.reasons[0].code == risk_list.loc[customer, "reason_1_code"]
    assert explanation.churn_probability == pytest.approx(risk_list.loc[customer, "churn_probability"])
    assert _error(service.explain(customer_id=999_999_999)) == (
        404,
        "customer_id: unknown customer: not in the latest feature table",
    )


def test_prediction_log__pseudonymised_without_quasi_identifiers_and_written_in_the_background(
    service, risk_list, env
):
    customer = int(risk_list.index[5])
    request_id = service.score(customer_ids=[customer]).request_id
    service.log.close()  # drains the queue, as a graceful shutdown does
    with sqlite3.connect(env / "out" / "churn.db") as connection:
        rows = pd.read_sql(
            "SELECT * FROM prediction_log WHERE request_id = ?", connection, params=[request_id]
        )
        access = pd.read_sql("SELECT * FROM access_log WHERE request_id = ?", connection, params=[request_id])
    from serving.request_log import RequestLogWriter

    service.log = RequestLogWriter(service.store.append_logs, 0.1, 500)
    assert len(rows) == 1
    assert rows["customer_key"].iloc[0] == pseudonymise(PSEUDONYM, customer)
    assert str(customer) not in rows["customer_key"].iloc[0] + rows["outputs"].iloc[0]
    logged = json.loads(rows["features"].iloc[0])
    assert {"age", "tenure_days", "income_band"}.isdisjoint(logged), "quasi-identifiers are withheld"
    assert logged["region"] is not None and logged["external_out_90d"] is not None
    assert rows["model_version"].iloc[0] == "1"
    assert access[["key_name", "endpoint", "customer_key"]].values.tolist() == [
        ["(direct call)", "score", pseudonymise(PSEUDONYM, customer)]
    ]


# -- the ASGI app through a test client -------------------------------------------------------------
@pytest.fixture(scope="module")
def client(env):
    from serving.service import ChurnService

    with TestClient(ChurnService.to_asgi()) as test_client:
        yield test_client


def test_auth__health_is_open_everything_else_needs_a_key_with_the_scope(client, risk_list):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    body = {"customer_ids": [int(risk_list.index[0])]}
    missing = client.post("/score", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/score", json=body, headers=auth("x" * 24)).status_code == 401
    assert client.get("/model-info").status_code == 401
    assert client.post("/score", json=body, headers=auth(READ)).status_code == 200
    outcome = {
        "event_id": "scope-check",
        "customer_id": int(risk_list.index[0]),
        "contacted_at": "2026-11-20T10:00:00Z",
        "channel": "phone",
        "reached": True,
    }
    refused = client.post("/contact-outcome", json=outcome, headers=auth(READ))
    assert refused.status_code == 403 and "write" in refused.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b'{"customer_ids": [1,', 400, "body: invalid JSON at line 1"),
        (b'{"customer_ids": [NaN]}', 400, "finite number"),
        (b'{"customer_ids": ["abc"]}', 400, "customer_ids[0]: must be a whole number"),
        (b'{"customer_ids": ["100249"]}', 400, "customer_ids[0]: must be a whole number"),
        (b'{"customer_ids": [100249.0]}', 400, "customer_ids[0]: must be a whole number"),
        (b'{"customer_ids": [true]}', 400, "customer_ids[0]: must be a whole number"),
        (b'{"customer_ids": [0]}', 400, "greater than or equal to 1"),
        (b"{}", 400, "send either customer_ids or rows"),
        (b'{"customer_ids": [1], "rows": [{"features": {}}]}', 400, "send either customer_ids or rows"),
        (b'{"customer_ids": [1], "extra": 1}', 400, "extra: not a field of this request"),
        (b'{"customer_ids": [1], "customer_ids": [2]}', 400, "customer_ids: appears more than once"),
        (b'{"customer_ids": [7, 5, 7, 5]}', 400, "customer_ids[2]: repeats customer_ids[0]"),
        (b'{"rows": [{"features": {"tenure_days": Infinity}}]}', 400, "finite number"),
        (b'{"rows": [{"features": {"tenure_days": true}}]}', 400, "rows[0].features.tenure_days"),
    ],
)
def test_bad_input__is_a_400_that_says_what_is_wrong(client, body, status, fragment):
    response = client.post("/score", content=body, headers=auth(READ) | {"content-type": "application/json"})
    assert response.status_code == status
    assert fragment in response.text


def test_limits__oversized_bodies_and_other_media_types_are_refused(client):
    big = b'{"customer_ids": [' + b"1," * 600_000 + b"1]}"
    response = client.post("/score", content=big, headers=auth(READ) | {"content-type": "application/json"})
    assert response.status_code == 413
    form = client.post("/score", content=b"a=1", headers=auth(READ) | {"content-type": "text/plain"})
    assert form.status_code == 415


def test_contact_outcome__idempotent_and_counted_by_the_contact_policy(client, risk_list):
    contacted = risk_list[(risk_list["contact"] == 1)].index[0]
    before = client.post("/score", json={"customer_ids": [int(contacted)]}, headers=auth(READ)).json()
    assert before["scores"][0]["contact"] is True
    when = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3)).isoformat()
    event = {
        "event_id": f"crm-{contacted}-1",
        "customer_id": int(contacted),
        "contacted_at": when,
        "channel": "phone",
        "action": "rate_offer",
        "reached": True,
        "offer_accepted": False,
    }
    first = client.post("/contact-outcome", json=event, headers=auth(WRITE))
    again = client.post("/contact-outcome", json=event, headers=auth(WRITE))
    assert (first.status_code, first.json()["status"]) == (201, "recorded")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    changed = client.post("/contact-outcome", json=event | {"offer_accepted": True}, headers=auth(WRITE))
    assert changed.status_code == 409, changed.text
    after = client.post("/score", json={"customer_ids": [int(contacted)]}, headers=auth(READ)).json()
    assert after["scores"][0]["contact"] is False
    assert after["scores"][0]["contact_rule"].startswith("contacted 2 days ago") or after["scores"][0][
        "contact_rule"
    ].startswith("contacted 3 days ago")


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"customer_id": 999_999_999}, 404, "unknown customer"),
        ({"action": "free_money"}, 400, "action: not one of"),
        ({"contacted_at": "0001-01-01T00:00:00Z"}, 400, "contacted_at: before the earliest allowed date"),
        (
            {"contacted_at": "0001-01-01T00:00:00+05:00"},
            400,
            "contacted_at: before the earliest allowed date",
        ),
        ({"contacted_at": "1950-06-01T00:00:00Z"}, 400, "contacted_at: before the customer joined"),
        ({"contacted_at": 1763633700}, 400, "contacted_at: must be an ISO 8601 date-time"),
        ({"reached": "yes"}, 400, "reached: must be true or false"),
        ({"channel": "pigeon"}, 400, "channel"),
        ({"contacted_at": "2099-01-01T00:00:00Z"}, 400, "contacted_at: in the future"),
        ({"reached": False, "offer_accepted": True}, 400, "offer_accepted"),
        ({"event_id": "has spaces"}, 400, "event_id"),
    ],
)
def test_contact_outcome__bad_events_are_refused(client, risk_list, change, status, fragment):
    event = {
        "event_id": "bad-event",
        "customer_id": int(risk_list.index[1]),
        "contacted_at": "2026-11-20T10:00:00+01:00",
        "channel": "phone",
        "reached": True,
    }
    response = client.post("/contact-outcome", json=event | change, headers=auth(WRITE))
    assert response.status_code == status and fragment in response.text


def test_risk_list__filters_and_pages_through_the_stored_list(client, risk_list):
    listed = risk_list[risk_list["contact"] == 1].sort_values("list_rank")
    first = client.get("/risk-list", params={"limit": 5}, headers=auth(READ)).json()
    second = client.get("/risk-list", params={"limit": 5, "offset": 5}, headers=auth(READ)).json()
    assert first["as_of"] == "2026-11-01" and first["total"] == len(listed)
    assert [i["customer_id"] for i in first["items"] + second["items"]] == listed.index[:10].tolist()
    owner = listed["action_owner"].value_counts().index[0]
    team = client.get("/risk-list", params={"team": owner, "limit": 500}, headers=auth(READ)).json()
    assert team["total"] == int((listed["action_owner"] == owner).sum()) > 0
    assert {i["action_owner"] for i in team["items"]} == {owner}
    high = client.get(
        "/risk-list", params={"tier": "high", "contacted_only": "false", "limit": 500}, headers=auth(READ)
    ).json()
    assert high["total"] == int((risk_list["risk_tier"] == "high").sum())
    assert client.get("/risk-list", params={"as_of": "2020-01-01"}, headers=auth(READ)).status_code == 404
    assert client.get("/risk-list", params={"limit": 0}, headers=auth(READ)).status_code == 400
    assert client.get("/risk-list", params={"limit": 501}, headers=auth(READ)).status_code == 400


def test_model_info__names_the_served_champion(client):
    info = client.get("/model-info", headers=auth(READ)).json()
    assert (info["model_name"], info["version"], info["alias"]) == ("bank-churn", "1", "champion")
    assert 0.5 < info["metrics"]["roc_auc"] <= 1.0 and info["features"] == 86
    assert len(info["feature_schema_hash"]) == 16


def test_openapi__documents_every_endpoint(client):
    spec = client.get("/docs.json").json()
    for path in (
        "/score",
        "/explain",
        "/contact-outcome",
        "/risk-list",
        "/model-info",
        "/healthz",
        "/readyz",
    ):
        assert path in spec["paths"], path


# -- model swaps ---------------------------------------------------------------------------------
def test_reload__a_newly_promoted_champion_is_swapped_in_without_a_restart(service, risk_list, env):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{env / 'mlflow.db'}")
    current = client.get_model_version("bank-churn", "1")
    copy = client.create_model_version("bank-churn", current.source, run_id=current.run_id)
    customer = int(risk_list.index[0])
    before = service.score(customer_ids=[customer])
    assert service.reload() is False, "nothing new yet"
    client.set_registered_model_alias("bank-churn", "champion", copy.version)
    try:
        assert service.reload() is True
        after = service.score(customer_ids=[customer])
        assert (before.model_version, after.model_version) == ("1", str(copy.version))
        assert after.scores[0].churn_probability == before.scores[0].churn_probability
    finally:
        client.set_registered_model_alias("bank-churn", "champion", "1")
        service.reload()


def test_start__refused_when_the_feature_table_lacks_a_model_feature(env, monkeypatch, tmp_path):
    from serving.model_bundle import FeatureSchemaError
    from serving.service import ChurnService

    copy = tmp_path / "churn.db"
    copy.write_bytes((env / "out" / "churn.db").read_bytes())
    with sqlite3.connect(copy) as connection:
        connection.execute("ALTER TABLE customer_features DROP COLUMN tenure_days")
    monkeypatch.setenv("CHURN_DATABASE_URL", f"sqlite:///{copy}")
    with pytest.raises(FeatureSchemaError, match="tenure_days"):
        ChurnService()


def test_database_locked__reads_go_on_and_a_write_is_a_503_not_a_500(client, risk_list, env):
    # given another process holding SQLite's write lock (WAL mode: readers are not blocked)
    locker = sqlite3.connect(env / "out" / "churn.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        customer = int(risk_list.index[2])
        assert client.get("/readyz").status_code == 200
        assert client.post("/score", json={"customer_ids": [customer]}, headers=auth(READ)).status_code == 200
        event = {
            "event_id": "locked-1",
            "customer_id": customer,
            "contacted_at": "2026-11-20T10:00:00Z",
            "channel": "phone",
            "reached": True,
        }
        # when a write waits past SQLite's busy timeout, then
        written = client.post("/contact-outcome", json=event, headers=auth(WRITE))
        assert written.status_code == 503 and written.json()["error"] == "database unavailable: retry later"
        assert written.headers["retry-after"] == "5"
    finally:
        locker.execute("ROLLBACK")
        locker.close()
