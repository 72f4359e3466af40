"""The retention desk's rules through its ASGI app (Starlette's test client) on the sample's list:
sessions, the forgery token, roles, the outcome rules shared with the API, the users file."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def app(api_env, tmp_path_factory):
    from churn.config import load_config
    from serving.desk.app import create_app
    from serving.desk.users import UserStore

    config = load_config()
    users_file = tmp_path_factory.mktemp("desk") / "users.json"
    config = config.model_copy(
        update={"desk": config.desk.model_copy(update={"users_file": str(users_file)})}
    )
    store = UserStore(users_file)
    engine = sa.create_engine(os.environ["CHURN_DATABASE_URL"])
    with engine.connect() as connection:
        as_of = connection.execute(sa.text("SELECT MAX(as_of) FROM risk_list")).scalar()
        customer, branch = connection.execute(
            sa.text(
                "SELECT customer_id, branch_id FROM risk_list WHERE as_of = :d AND status = 'scored' LIMIT 1"
            ),
            {"d": as_of},
        ).one()
    engine.dispose()
    store.add("lead1", "lead", PASSWORD)
    store.add("audit1", "audit", PASSWORD)
    store.add("branch1", "branch", PASSWORD, str(branch))
    return {"app": create_app(config, "p" * 24, "k" * 40), "customer": customer, "users_file": users_file}


def _client(app):
    from starlette.testclient import TestClient

    return TestClient(app["app"], base_url="http://127.0.0.1")


def _token(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _logged_in(app, name: str):
    client = _client(app)
    token = _token(client.get("/desk/login").text)
    answer = client.post(
        "/desk/login", data={"csrf": token, "name": name, "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 303
    return client


def test_pages_without_a_session_send_to_the_login_and_a_forged_or_tampered_request_is_refused(app):
    client = _client(app)
    for page in ("/desk/list", "/desk/overview", f"/desk/customer/{app['customer']}", "/desk/list.csv"):
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/desk/login", page
    answer = client.post("/desk/login", data={"name": "lead1", "password": PASSWORD})
    assert answer.status_code == 403, "a login form without the token is refused"
    token = _token(client.get("/desk/login").text)
    wrong = client.post("/desk/login", data={"csrf": token, "name": "lead1", "password": "not it at all"})
    assert wrong.status_code == 401 and "wrong password" in wrong.text
    lead = _logged_in(app, "lead1")
    cookie = lead.cookies.get("churn_desk")
    forged = _client(app)
    forged.cookies.set("churn_desk", cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB"))
    assert forged.get("/desk/list", follow_redirects=False).status_code == 303, (
        "a tampered cookie is no session"
    )
    posted = lead.post(f"/desk/customer/{app['customer']}/outcome", data={"channel": "phone"})
    assert posted.status_code == 403, "an outcome without the form's token is refused"
    headers = lead.get("/desk/list").headers
    assert (
        "frame-ancestors 'none'" in headers["content-security-policy"]
        and headers["cache-control"] == "no-store"
    )


def test_outcome__validated_like_the_api_and_idempotent_on_its_event_id(app):
    lead = _logged_in(app, "lead1")
    page = lead.get(f"/desk/customer/{app['customer']}")
    assert page.status_code == 200
    form = {
        "csrf": _token(page.text),
        "event_id": "desk-test-0001",
        "contacted_at": "2026-11-02T10:00",
        "channel": "phone",
        "action": "retention_call",
        "reached": "no",
        "offer_accepted": "yes",
        "customer_status": "unknown",
    }
    url = f"/desk/customer/{app['customer']}/outcome"
    refused = lead.post(url, data=form)
    assert (
        refused.status_code == 400
        and "offer_accepted: cannot be true when the customer was not reached" in refused.text
    )
    assert lead.post(url, data=form | {"channel": "pigeon"}).status_code == 400
    assert "action: not one of" in lead.post(url, data=form | {"reached": "yes", "action": "bribe"}).text
    ok = form | {"reached": "yes"}
    first = lead.post(url, data=ok, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].endswith("recorded=new")
    again = lead.post(url, data=ok, follow_redirects=False)
    assert again.headers["location"].endswith("recorded=again"), "the same event twice is recorded once"
    conflict = lead.post(url, data=ok | {"customer_status": "left"})
    assert (
        conflict.status_code == 409 and "event_id: already recorded with different content" in conflict.text
    )
    audit = _logged_in(app, "audit1")
    assert audit.post(url, data=ok | {"csrf": _token(audit.get("/desk/audit").text)}).status_code == 403


def test_users_file__only_argon2_hashes_owner_only_and_the_cli_refuses_bad_users(app, api_env):
    text = Path(app["users_file"]).read_text()
    assert PASSWORD not in text and all(
        u["password_hash"].startswith("$argon2id$") for u in json.loads(text)["users"].values()
    )
    assert stat.S_IMODE(os.stat(app["users_file"]).st_mode) == 0o600
    churn = str(Path(sys.executable).with_name("churn"))
    for args, message in (
        (["users", "add", "x1", "--role", "branch"], "branch: branch staff need --branch"),
        (["users", "add", "x1", "--role", "king"], "role: one of branch, lead, audit"),
        (["users", "add", "x1", "--role", "lead"], "password: at least 12 characters"),
    ):
        done = subprocess.run(
            [churn, *args], input="short\n", capture_output=True, text=True, cwd=ROOT, timeout=60
        )
        assert done.returncode == 2 and message in done.stderr + done.stdout, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_export__csv_and_excel_hold_the_same_filtered_rows_and_a_branch_user_only_their_branch(app):
    import io

    import pandas as pd

    lead = _logged_in(app, "lead1")
    csv = lead.get("/desk/list.csv?tier=high&sort=probability")
    xlsx = lead.get("/desk/list.xlsx?tier=high&sort=probability")
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    from_csv = pd.read_csv(io.StringIO(csv.text))
    from_xlsx = pd.read_excel(io.BytesIO(xlsx.content), engine="openpyxl")
    assert len(from_csv) == len(from_xlsx) > 0 and set(from_csv["risk_tier"]) == {"high"}
    assert from_csv["customer_id"].tolist() == from_xlsx["customer_id"].tolist()
    assert from_csv["churn_probability"].is_monotonic_decreasing
    assert lead.get("/desk/list.pdf").status_code == 404
    assert lead.get("/desk/list.csv?sort=secret_column").status_code == 400
    branch = _logged_in(app, "branch1")
    mine = pd.read_csv(io.StringIO(branch.get("/desk/list.csv").text))
    assert mine["branch_id"].nunique() == 1
