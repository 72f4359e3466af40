"""The scoring API: a BentoML service that adapts HTTP to the scoring core.

    bentoml serve serving.service:ChurnService --port 3000      (or `make serve`)

POST /score, /explain, /contact-outcome are BentoML APIs; GET /risk-list and /model-info are a
small FastAPI app mounted on the same service; /healthz, /readyz (model and database) and
/metrics (Prometheus) are BentoML's own. `serving.guard.ApiGuard` checks methods, keys, rate
limits and the requests themselves first, and serves the OpenAPI document (`serving.openapi`).

The champion is loaded from the MLflow registry at start-up; a thread looks for a newly promoted
champion every `serving.reload_seconds` and swaps it in whole (requests hold the state they
started with). Start-up fails, with a log line saying why, when the champion's features do not
match the feature table the daily job wrote.

Every customer read or written is recorded in the access log (key name, endpoint, keyed hash of
the id) and every score in the prediction log (`serving.request_records`), through one journaled
background writer (`serving.request_log`). What is served, the champion and the stored
customers, is loaded by `serving.service_state`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import bentoml
import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from serving import api_models as m
from serving.api_rows import Batch, by_id, by_row, customer_score, explain_row, list_item, model_info_answer
from serving.auth import KeyRing
from serving.guard import ApiGuard, RateLimiter, log_client_error
from serving.model_bundle import ModelBundle
from serving.openapi import allowed_query_values, build_spec
from serving.outcomes import record_contact_outcome
from serving.policy import contact_history_arrays, tiers
from serving.request_checks import ApiError
from serving.request_log import RequestLogWriter, replay_journals
from serving.request_records import access_rows, api_key_name, prediction_row, score_rows
from serving.scoring import decide
from serving.service_state import (
    Champion,
    State,
    check_schema,
    load_champion,
    load_customers,
    service_settings,
    settle_memory,
)
from serving.store import ServingStore, contact_window

logger = logging.getLogger("churn.api")
HISTORY_UNAVAILABLE = "contact history unavailable (database down): not contacted"


class _LazyGuard(ApiGuard):
    """ApiGuard that reads the keys when the server starts, not when this module is imported."""

    def __init__(self, app: Any):
        config, secrets = service_settings()
        serving = config.serving
        super().__init__(
            app,
            KeyRing(secrets.api_keys),
            serving.max_body_bytes,
            RateLimiter(serving.rate_limit_per_second, serving.rate_limit_burst),
            serving.page_size_limit,
            lambda: build_spec(config),
            allowed_query_values(config),
        )


rest = FastAPI(title="Churn scoring: lists and model", openapi_url=None, docs_url=None, redoc_url=None)


@bentoml.service(name="churn_scoring", traffic={"timeout": 30}, workers=1)
@bentoml.asgi_app(rest, path="/")
class ChurnService:
    """Scores, explanations and recommendations for CRM front ends."""

    def __init__(self) -> None:
        self.config, secrets = service_settings()
        self._pseudonym_key = secrets.pseudonym_key.get_secret_value()
        self.store = ServingStore(self.config.database_url)
        if not self.store.has_features():
            raise RuntimeError("no customer_features table: run the daily job (`churn score`) first")
        champion = load_champion(self.config, None)
        check_schema(champion.bundle, self.store.feature_columns())  # refuse to start on a mismatch
        self._state = State(champion, load_customers(self.store, champion.bundle))
        journal = self.config.output_path / "request-journal"
        replay_journals(journal, self.store.append_logs)  # rows a killed worker left behind
        self.log = RequestLogWriter(
            self.store.append_logs,
            self.config.serving.log_flush_seconds,
            self.config.serving.log_batch_size,
            journal_dir=journal,
        )
        self._stop = threading.Event()
        self._database_warned = 0.0
        if self.config.serving.reload_seconds > 0:
            threading.Thread(target=self._watch, name="champion-watch", daemon=True).start()
        logger.info("serving %s version %s", self.config.mlflow.model_name, champion.version)
        settle_memory()

    # -- the champion and the stored customers -----------------------------------------------------
    def reload(self) -> bool:
        """Swap in a newly promoted champion and the daily job's newest feature rows; True if
        anything changed. A champion whose features do not match the table is refused and the
        current state kept."""
        current = self._state
        champion = load_champion(self.config, current.champion)
        marker = self.store.daily_run_marker()
        if champion is current.champion and marker == current.customers.marker:
            return False
        check_schema(champion.bundle, self.store.feature_columns())
        self._state = State(champion, load_customers(self.store, champion.bundle))  # one reference swap
        settle_memory()
        if champion is not current.champion:
            logger.info("champion is now version %s (was %s)", champion.version, current.champion.version)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.config.serving.reload_seconds):
            try:
                self.reload()
            except Exception as exc:  # keep serving what is loaded
                logger.error(
                    "reload failed, keeping version %s: %s", self._state.champion.version, type(exc).__name__
                )

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._stop.set()
        self.log.close()
        self.store.dispose()

    def __is_ready__(self) -> bool:
        try:
            self.store.ping()
        except Exception:
            return False
        return self._state is not None

    # -- answering ---------------------------------------------------------------------------------
    def _answer(self, ctx: bentoml.Context | Request | None, route: str, handle: Callable[[], Any]) -> Any:
        """Run a handler; client errors become their 4xx, a database outage a 503, anything
        else a 500 whose log line names the error's type and place only (messages can hold data)."""
        try:
            return handle()
        except ApiError as refused:
            error = refused  # `as` names are unbound after their except block
            method = "POST" if route in ("/score", "/explain", "/contact-outcome") else "GET"
            log_client_error(method, route, error, api_key_name(ctx))
        except sa.exc.SQLAlchemyError as exc:
            logger.error("%s: database unavailable (%s)", route, type(exc).__name__)
            error = ApiError(503, None, "database unavailable: retry later", {"Retry-After": "5"})
        except Exception as exc:
            place = traceback.extract_tb(exc.__traceback__)[-1]
            logger.error(
                "%s: internal error %s at %s:%d", route, type(exc).__name__, place.filename, place.lineno
            )
            error = ApiError(
                500, None, "internal error: the server log says where (request details are not logged)"
            )
        if ctx is not None and not isinstance(ctx, Request):
            ctx.response.status_code = error.status  # BentoML applies the context's status
            ctx.response.metadata.update(error.headers)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    # -- POST /score -----------------------------------------------------------------------------
    @bentoml.api(route="/score", input_spec=m.ScoreRequest)
    def score(
        self,
        ctx: bentoml.Context = None,
        customer_ids: list[int] | None = None,
        rows: list[m.FeatureRow] | None = None,
    ) -> m.ScoreResponse:
        """Score customers by id (stored features) or feature rows: probability, tier, value at
        risk, reasons, next-best products, action and contact decision. Unknown ids come back
        in `errors`; feature values outside the training range in `warnings`."""
        return self._answer(ctx, "/score", lambda: self._score(ctx, customer_ids, rows))

    def _score(self, ctx, customer_ids, rows) -> m.ScoreResponse:
        started = time.perf_counter()
        state = self._state
        champion = state.champion
        limit = self.config.serving.max_batch
        items = customer_ids if customer_ids is not None else rows
        if len(items) > limit:
            field = "customer_ids" if customer_ids is not None else "rows"
            raise ApiError(400, field, f"{len(items)} items, more than the limit of {limit} per request")
        if customer_ids is not None:
            batch, errors = by_id(state.customers, customer_ids)
        else:
            batch, errors = by_row(state.customers, rows, champion.bundle, "rows"), []
        out = self._decide(champion.bundle, batch) if batch.order else {}
        scores = [customer_score(index, customer, out, j) for j, (index, customer) in enumerate(batch.order)]
        request_id = uuid.uuid4().hex
        if scores:
            self._log_scores(ctx, request_id, champion, batch, scores, started)
        return m.ScoreResponse(
            request_id=request_id,
            model_version=champion.version,
            features_as_of=state.customers.as_of if customer_ids is not None else None,
            scores=scores,
            errors=errors,
            warnings=batch.warnings,
        )

    def _decide(self, bundle: ModelBundle, batch: Batch) -> dict[str, np.ndarray]:
        """The scoring core for this batch, with contacts counted up to now. Without the
        database, scores are still given, and nobody is marked for contact."""
        now = pd.Timestamp.now(tz="UTC").tz_localize(None)
        known = [int(c) for c in batch.ids if c >= 0]  # rows without an id have no contacts
        try:
            contacts = self.store.contacts(known, self._contact_window(now))
        except sa.exc.SQLAlchemyError as exc:
            self._warn_database(exc)
            contacts = None
        empty = (np.array([], dtype=np.int64), np.array([], dtype="datetime64[ns]"), np.array([], dtype=bool))
        unique, row_of = np.unique(batch.ids, return_inverse=True)  # what-if rows may repeat a customer
        history = {
            name: values[row_of]
            for name, values in contact_history_arrays(*(contacts or empty), unique, now).items()
        }
        out = decide(bundle, batch.x, batch.ids, batch.context, history, self.config)
        if contacts is None:
            out["contact"] = np.zeros(len(batch.ids), dtype=bool)
            out["contact_rule"] = np.where(
                out["contact_rule"] == "contact", HISTORY_UNAVAILABLE, out["contact_rule"]
            )
        return out

    def _warn_database(self, exc: Exception) -> None:
        if time.monotonic() - self._database_warned > 10:  # one line per 10 s, not one per request
            self._database_warned = time.monotonic()
            logger.error("database unavailable (%s): scoring without contact history", type(exc).__name__)

    # -- POST /explain ---------------------------------------------------------------------------
    @bentoml.api(route="/explain", input_spec=m.ExplainRequest)
    def explain(
        self, ctx: bentoml.Context = None, customer_id: int | None = None, row: m.FeatureRow | None = None
    ) -> m.Explanation:
        """The full SHAP contribution list for one customer, with feature values and reason texts."""
        return self._answer(ctx, "/explain", lambda: self._explain(ctx, customer_id, row))

    def _explain(self, ctx, customer_id, row) -> m.Explanation:
        started = time.perf_counter()
        state = self._state
        champion = state.champion
        bundle = champion.bundle
        warnings = []
        if customer_id is not None:
            position = state.customers.position.get(customer_id)
            if position is None:
                raise ApiError(404, "customer_id", "unknown customer: not in the latest feature table")
            x = state.customers.x[[position]]
        else:
            batch = by_row(state.customers, [row], bundle, "row")
            x, warnings = batch.x, batch.warnings
        request_id = uuid.uuid4().hex
        subject = customer_id if customer_id is not None else row.customer_id
        record = bundle.row_values(x[0])  # the explanation's values and the prediction log's
        explanation = explain_row(bundle, x, record, champion.version, request_id, subject, warnings)
        probability = explanation.churn_probability
        risk_tier = str(tiers(np.array([probability]), self.config.scoring.tiers)[0])
        outputs = {"churn_probability": probability, "risk_tier": risk_tier}
        log_row = prediction_row(
            self._pseudonym_key, "explain", request_id, champion.version, subject, record, outputs, started
        )
        self.log.put("prediction_log", [log_row])
        self._log_access(ctx, "explain", request_id, [subject])
        return explanation

    # -- POST /contact-outcome -------------------------------------------------------------------
    @bentoml.api(route="/contact-outcome", input_spec=m.ContactOutcomeRequest)
    def contact_outcome(
        self,
        event_id: str,
        customer_id: int,
        contacted_at: dt.datetime,
        channel: str,
        reached: bool,
        ctx: bentoml.Context = None,
        action: str | None = None,
        offer_accepted: bool | None = None,
        customer_status: str = "unknown",
    ) -> m.OutcomeRecorded:
        """Record what happened after a contact; the contact policy counts it from now on.
        Idempotent on `event_id`: 201 when recorded, 200 when already recorded the same way,
        409 when the id was used for different content."""

        def handle() -> m.OutcomeRecorded:
            now = pd.Timestamp.now(tz="UTC").tz_localize(None)
            customers = self._state.customers
            position = customers.position.get(customer_id)
            if position is None:
                raise ApiError(404, "customer_id", "unknown customer: not in the latest feature table")
            request = m.ContactOutcomeRequest.model_construct(
                event_id=event_id,
                customer_id=customer_id,
                contacted_at=contacted_at,
                channel=channel,
                action=action,
                reached=reached,
                offer_accepted=offer_accepted,
                customer_status=customer_status,
            )
            created = record_contact_outcome(
                self.store, self.config, request, customers.join_date[position], now
            )
            self._log_access(ctx, "contact-outcome", uuid.uuid4().hex, [customer_id])
            if ctx is not None:
                ctx.response.status_code = 201 if created else 200
            return m.OutcomeRecorded(event_id=event_id, status="recorded" if created else "duplicate")

        return self._answer(ctx, "/contact-outcome", handle)

    def _contact_window(self, now: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        return contact_window(
            self.config.data.earliest_date, self.config.serving.clock_tolerance_minutes, now
        )

    # -- GET /risk-list and /model-info (FastAPI, mounted) ------------------------------------------
    @rest.get("/risk-list", response_model=m.RiskListPage)
    def risk_list(
        self,
        request: Request,
        as_of: Annotated[dt.date | None, Query()] = None,
        team: Annotated[str | None, Query(max_length=64)] = None,
        branch: Annotated[str | None, Query(max_length=32)] = None,
        segment: Annotated[str | None, Query(max_length=32)] = None,
        tier: m.RiskTier | None = None,
        contacted_only: bool = True,
        limit: Annotated[int, Query(ge=1)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ):
        """The stored daily list, filtered and paginated (ranked by expected saving). The query
        was checked by the guard (`m.RiskListQuery`, `serving.page_size_limit`)."""

        def handle() -> m.RiskListPage:
            date = as_of.isoformat() if as_of else self.store.latest_list_date()
            filters = {"action_owner": team, "branch_id": branch, "segment": segment, "risk_tier": tier}
            total, page, run = (
                self.store.risk_list(date, filters, contacted_only, limit, offset)
                if date
                else (0, None, None)
            )
            if run is None:
                raise ApiError(404, "as_of", "no risk list for that date" if as_of else "no risk list yet")
            items = [list_item(r) for r in page.to_dict("records")]
            self._log_access(request, "risk-list", uuid.uuid4().hex, [i.customer_id for i in items])
            return m.RiskListPage(
                as_of=date,
                model_version=run.get("model_version"),
                total=total,
                limit=limit,
                offset=offset,
                items=items,
            )

        return self._answer(request, "/risk-list", handle)

    @rest.get("/model-info", response_model=m.ModelInfo)
    def model_info(self):
        """The champion being served: version, training date, headline metrics, feature schema."""
        return model_info_answer(self._state.champion, self.config.mlflow.model_name)

    # -- the request logs ------------------------------------------------------------------------
    def _log_scores(self, ctx, request_id, champion: Champion, batch: Batch, scores, started) -> None:
        rows = score_rows(self._pseudonym_key, request_id, champion, batch, scores, started)
        self.log.put("prediction_log", rows)
        self._log_access(ctx, "score", request_id, [s.customer_id for s in scores])

    def _log_access(self, ctx: Any, endpoint: str, request_id: str, customer_ids: list[int | None]) -> None:
        self.log.put("access_log", access_rows(self._pseudonym_key, ctx, endpoint, request_id, customer_ids))


ChurnService.add_asgi_middleware(_LazyGuard)
