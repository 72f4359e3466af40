"""The retention desk: the pages the people who work the list use, as an ASGI (Starlette) app.

    churn desk [--port 8080]        (or `make desk` on the sample after `make run`)

Pages (all under /desk): `login`, `list` (today's list: filters, sort, pages, search, CSV and
Excel export), `customer/{id}` (the customer, the reasons and their chart, the action and why, the
contact history and policy, the outcome form), `overview` (risk, kinds of churn over time,
campaign impact, drift alerts) and `audit` (who opened which customer). A request without a
session goes to the login page. Sessions are signed cookies (itsdangerous, through Starlette's
SessionMiddleware), every form carries a per-session token against cross-site request forgery,
and every customer page opened is written to the access audit log under the customer's pseudonym.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from serving.api_models import CHANNELS, ContactOutcomeRequest
from serving.auth import pseudonymise
from serving.desk import views
from serving.desk.data import DeskData
from serving.desk.users import DeskUser, UserStore, users_file
from serving.outcomes import record_contact_outcome
from serving.request_checks import ApiError
from serving.store import ServingStore

HERE = Path(__file__).resolve().parent
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOCKOUT_FAILURES, LOCKOUT_SECONDS = 5, 300


class Desk:
    """The app's state: the config, the stores, the users, the templates."""

    def __init__(self, config: Any, pseudonym_key: str):
        self.config = config
        self.store = ServingStore(config.database_url)
        self.data = DeskData(self.store.engine, config.output_path)
        self.users = UserStore(users_file(config))
        self.pseudonym_key = pseudonym_key
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.failures: dict[str, list[float]] = {}

    # -- sessions, tokens, users ------------------------------------------------------------------
    def csrf(self, request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    async def checked_form(self, request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        expected = request.session.get("csrf", "")
        if not expected or not hmac.compare_digest(form.get("csrf", ""), expected):
            raise HTTPException(403, "the form has expired or did not come from this site: reload the page")
        return form

    def user(self, request: Request) -> DeskUser | None:
        name = request.session.get("user")
        started = request.session.get("since", 0)
        if not name or time.time() - started > self.config.desk.session_hours * 3600:
            return None
        return self.users.get(name)  # read every time: a removed user or a changed role counts at once

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context |= {"user": self.user(request), "csrf": self.csrf(request), "channels": CHANNELS}
        response = self.templates.TemplateResponse(request, template, context, status_code=status)
        response.headers.update(HEADERS)
        return response

    def locked(self, name: str) -> bool:
        now = time.time()
        recent = [t for t in self.failures.get(name, []) if now - t < LOCKOUT_SECONDS]
        self.failures[name] = recent
        return len(recent) >= LOCKOUT_FAILURES


def _require(request: Request, *roles: str) -> DeskUser:
    desk: Desk = request.app.state.desk
    user = desk.user(request)
    if user is None:
        raise HTTPException(303, headers={"Location": "/desk/login"})
    if roles and user.role not in roles:
        raise HTTPException(403, f"a {user.role} user cannot open this page")
    return user


# -- login ---------------------------------------------------------------------------------------
async def login_page(request: Request) -> Response:
    return request.app.state.desk.render(request, "login.html")


async def login(request: Request) -> Response:
    desk: Desk = request.app.state.desk
    form = await desk.checked_form(request)
    name = form.get("name", "").strip()
    if desk.locked(name):
        return desk.render(
            request, "login.html", 429, error="too many failed logins: wait five minutes", name=name
        )
    user = desk.users.verify(name, form.get("password", ""))
    if user is None:
        desk.failures.setdefault(name, []).append(time.time())
        return desk.render(request, "login.html", 401, error="unknown name or wrong password", name=name)
    desk.failures.pop(name, None)
    request.session.clear()  # a fresh session (and token) at every login
    request.session.update({"user": user.name, "since": time.time(), "csrf": secrets.token_urlsafe(32)})
    return RedirectResponse("/desk/overview" if user.role == "audit" else "/desk/list", 303)


async def logout(request: Request) -> Response:
    await request.app.state.desk.checked_form(request)
    request.session.clear()
    return RedirectResponse("/desk/login", 303)


async def home(request: Request) -> Response:
    user = _require(request)
    return RedirectResponse("/desk/overview" if user.role == "audit" else "/desk/list", 303)


# -- the list ------------------------------------------------------------------------------------
async def list_page(request: Request) -> Response:
    user = _require(request, "branch", "lead")
    desk: Desk = request.app.state.desk
    context = views.list_context(desk.data, desk.config, user, request.query_params)
    return desk.render(request, "list.html", 400 if context.get("error") else 200, **context)


async def list_export(request: Request) -> Response:
    user = _require(request, "branch", "lead")
    desk: Desk = request.app.state.desk
    kind = request.path_params["kind"]
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404, "exports are .csv or .xlsx")
    frame, as_of = views.export_frame(desk.data, desk.config, user, request.query_params)
    desk.data.audit(user, f"export {kind}", None)
    name = f"risk-list-{as_of}"
    if kind == "csv":
        body = frame.to_csv(index=False).encode()
        media = "text/csv; charset=utf-8"
    else:
        buffer = io.BytesIO()
        frame.to_excel(buffer, index=False, sheet_name="risk list", engine="openpyxl")
        body = buffer.getvalue()
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = StreamingResponse(
        iter([body]),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{kind}"'},
    )
    response.headers.update(HEADERS)
    return response


# -- a customer ----------------------------------------------------------------------------------
def _customer_or_refuse(request: Request, user: DeskUser) -> tuple[int, dict[str, Any], str]:
    desk: Desk = request.app.state.desk
    try:
        customer_id = int(request.path_params["customer_id"])
    except ValueError:
        raise HTTPException(404, "no such customer") from None
    as_of = desk.data.latest_as_of()
    row = desk.data.customer(as_of, customer_id) if as_of else None
    if row is None:
        raise HTTPException(404, "this customer is not on the latest list")
    if not user.may_see_branch(row["branch_id"]):
        desk.data.audit(user, "customer refused", pseudonymise(desk.pseudonym_key, customer_id))
        raise HTTPException(403, "this customer belongs to another branch")
    return customer_id, row, as_of


async def customer_page(request: Request) -> Response:
    user = _require(request, "branch", "lead")
    desk: Desk = request.app.state.desk
    customer_id, row, as_of = _customer_or_refuse(request, user)
    desk.data.audit(user, "customer", pseudonymise(desk.pseudonym_key, customer_id))
    context = views.customer_context(desk.data, desk.config, row, as_of)
    context["recorded"] = request.query_params.get("recorded")
    return desk.render(request, "customer.html", **context, form=_blank_form())


def _blank_form() -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0, tzinfo=None)
    return {"event_id": f"desk-{uuid.uuid4().hex}", "contacted_at": now.isoformat(timespec="minutes")}


async def record_outcome(request: Request) -> Response:
    user = _require(request, "branch", "lead")
    desk: Desk = request.app.state.desk
    form = await desk.checked_form(request)
    customer_id, row, as_of = _customer_or_refuse(request, user)
    error, status = None, 201
    try:
        outcome = ContactOutcomeRequest(
            event_id=form.get("event_id", ""),
            customer_id=customer_id,
            contacted_at=form.get("contacted_at", ""),
            channel=form.get("channel", ""),
            action=form.get("action") or None,
            reached=form.get("reached") == "yes",
            offer_accepted={"yes": True, "no": False}.get(form.get("offer_accepted", "")),
            customer_status=form.get("customer_status", "unknown"),
        )
        created = record_contact_outcome(
            desk.store,
            desk.config,
            outcome,
            views.join_date(desk.store, customer_id),
            pd.Timestamp.now(tz="UTC").tz_localize(None),
        )
        desk.data.audit(user, "outcome", pseudonymise(desk.pseudonym_key, customer_id))
        return RedirectResponse(f"/desk/customer/{customer_id}?recorded={'new' if created else 'again'}", 303)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "form"
        error, status = f"{field}: {first['msg'].removeprefix('Value error, ')}", 400
    except ApiError as exc:
        error, status = str(exc), exc.status
    context = views.customer_context(desk.data, desk.config, row, as_of)
    return desk.render(request, "customer.html", status, **context, form=form, error=error)


# -- overview and audit --------------------------------------------------------------------------
async def overview_page(request: Request) -> Response:
    user = _require(request, "lead", "audit")
    desk: Desk = request.app.state.desk
    return desk.render(request, "overview.html", **views.overview_context(desk.data, user))


async def audit_page(request: Request) -> Response:
    _require(request, "audit")
    desk: Desk = request.app.state.desk
    return desk.render(request, "audit.html", log=desk.data.audit_log().to_dict("records"))


async def http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 303:
        return RedirectResponse(exc.headers["Location"], 303)
    if not request.url.path.startswith("/desk/"):
        # outside the desk (a browser's /favicon.ico): no page, and no session (whose cookie,
        # not sent outside /desk, would be replaced by an empty one)
        return Response(exc.detail, exc.status_code, media_type="text/plain")
    desk: Desk = request.app.state.desk
    return desk.render(request, "error.html", exc.status_code, message=exc.detail)


def create_app(config: Any, pseudonym_key: str, session_key: str) -> Starlette:
    routes = [
        Route("/desk", home),
        Route("/desk/", home),
        Route("/desk/login", login_page, methods=["GET"]),
        Route("/desk/login", login, methods=["POST"]),
        Route("/desk/logout", logout, methods=["POST"]),
        Route("/desk/list", list_page),
        Route("/desk/list.{kind:str}", list_export),
        Route("/desk/customer/{customer_id}", customer_page, methods=["GET"]),
        Route("/desk/customer/{customer_id}/outcome", record_outcome, methods=["POST"]),
        Route("/desk/overview", overview_page),
        Route("/desk/audit", audit_page),
        Mount("/desk/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=session_key,
            session_cookie="churn_desk",
            max_age=int(config.desk.session_hours * 3600),
            same_site="strict",
            https_only=config.desk.secure_cookies,
            path="/desk",
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.desk = Desk(config, pseudonym_key)
    return app


__all__ = ["create_app"]
