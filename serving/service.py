"""The scoring API: a BentoML service that adapts HTTP to the scoring core.

    bentoml serve serving.service:ChurnService --port 3000      (or `make serve`)

POST /score, /explain, /contact-outcome are BentoML APIs; GET /risk-list and /model-info are a
small FastAPI app mounted on the same service; /healthz, /readyz (model and database) and
/metrics (Prometheus) are BentoML's own. `serving.auth.ApiGuard` checks keys and limits first.

The champion is loaded from the MLflow registry at start-up; a thread looks for a newly promoted
champion every `serving.reload_seconds` and swaps it in whole (requests hold the state they
started with). Start-up fails, with a log line saying why, when the champion's features do not
match the feature table the daily job wrote.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import bentoml
import numpy as np
import pandas as pd
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from churn.config import AppConfig, load_config
from serving import api_models as m
from serving.auth import ApiGuard, KeyRing, Secrets, load_secrets, pseudonymise
from serving.model_bundle import FeatureSchemaError, ModelBundle
from serving.policy import contact_history_arrays, tiers
from serving.prediction_log import PredictionLogWriter
from serving.scoring import CUSTOMER_COLUMNS, TOP, decide
from serving.store import Outcome, OutcomeConflict, ServingStore

logger = logging.getLogger("churn.api")


class ApiError(Exception):
    """A client error: the status and a message that names the field."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self)}, status_code=self.status)


@dataclass(frozen=True)
class Champion:
    bundle: ModelBundle
    version: str
    info: dict[str, Any]


@dataclass(frozen=True)
class Customers:
    """The daily job's latest feature rows, as the champion's feature matrix, and each
    customer's context, in memory: about 0.5 KB per customer, so a lookup by id costs no
    database round trip and no per-request conversion."""

    marker: str | None
    as_of: str | None
    ids: np.ndarray
    position: dict[int, int]  # customer id -> row
    x: np.ndarray
    context: dict[str, np.ndarray]  # CUSTOMER_COLUMNS

    def rows(self, positions: list[int]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(ids, feature matrix, context) of these rows."""
        return (
            self.ids[positions],
            self.x[positions],
            {column: values[positions] for column, values in self.context.items()},
        )


@dataclass(frozen=True)
class _Batch:
    """The rows of one request, ready for the scoring core."""

    ids: np.ndarray  # customer ids; rows sent without one get -(position + 1)
    x: np.ndarray
    context: dict[str, np.ndarray]
    order: list[tuple[int, int | None]]  # (index in the request, customer id as sent) per row


@dataclass(frozen=True)
class State:
    """What one request reads: swapped whole, so a request never sees half of a reload."""

    champion: Champion
    customers: Customers


def service_settings() -> tuple[AppConfig, Secrets]:
    """Config (CHURN_CONFIG or the default, with environment overrides) and secrets."""
    config = load_config(os.environ.get("CHURN_CONFIG") or None)
    return config, load_secrets(config.serving.secrets_file)


def check_schema(bundle: ModelBundle, columns: list[str]) -> None:
    """Raise FeatureSchemaError when the feature table lacks a feature the bundle needs."""
    missing = [name for name in bundle.feature_names if name not in columns]
    if missing:
        raise FeatureSchemaError(
            f"the champion needs {len(missing)} feature(s) the feature table does not have "
            f"(e.g. {missing[0]!r}); rerun `churn score` with the matching feature code"
        )


class _LazyGuard(ApiGuard):
    """ApiGuard that reads the keys when the server starts, not when this module is imported."""

    def __init__(self, app: Any):
        config, secrets = service_settings()
        super().__init__(app, KeyRing(secrets.api_keys), config.serving.max_body_bytes)


rest = FastAPI(title="Churn scoring: lists and model")


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
        champion = self._load(None)
        check_schema(champion.bundle, self.store.feature_columns())  # refuse to start on a mismatch
        self._state = State(champion, self._customers(champion.bundle))
        self.log = PredictionLogWriter(
            self.store.append_predictions,
            self.config.serving.log_flush_seconds,
            self.config.serving.log_batch_size,
        )
        self._stop = threading.Event()
        if self.config.serving.reload_seconds > 0:
            threading.Thread(target=self._watch, name="champion-watch", daemon=True).start()
        logger.info("serving %s version %s", self.config.mlflow.model_name, champion.version)
        _settle_memory()

    # -- the champion and the stored customers -----------------------------------------------------
    def _load(self, current: Champion | None) -> Champion:
        from serving.registry import champion_version, load_bundle, version_metrics

        version = champion_version(self.config)
        if current is not None and current.version == version:
            return current
        bundle = load_bundle(self.config, version)
        bundle.predict_threads = 1  # one row per call: threads would only contend between requests
        info = version_metrics(self.config, version) | {
            "loaded_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
        }
        return Champion(bundle, version, info)

    def _customers(self, bundle: ModelBundle) -> Customers:
        marker = self.store.daily_run_marker()
        features, context = self.store.all_customers()
        ids = features.index.to_numpy()
        return Customers(
            marker,
            self.store.features_as_of(),
            ids,
            {customer: row for row, customer in enumerate(ids.tolist())},
            bundle.matrix(bundle.prepare(features)),
            {column: context[column].to_numpy() for column in CUSTOMER_COLUMNS},
        )

    def reload(self) -> bool:
        """Swap in a newly promoted champion and the daily job's newest feature rows; True if
        anything changed. A champion whose features do not match the table is refused and the
        current state kept."""
        current = self._state
        champion = self._load(current.champion)
        marker = self.store.daily_run_marker()
        if champion is current.champion and marker == current.customers.marker:
            return False
        check_schema(champion.bundle, self.store.feature_columns())
        self._state = State(champion, self._customers(champion.bundle))  # one reference swap
        _settle_memory()
        if champion is not current.champion:
            logger.info("champion is now version %s (was %s)", champion.version, current.champion.version)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.config.serving.reload_seconds):
            try:
                self.reload()
            except Exception as exc:  # keep serving what is loaded
                logger.error("reload failed, keeping version %s: %s", self._state.champion.version, exc)

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

    # -- POST /score -----------------------------------------------------------------------------
    @bentoml.api(route="/score", input_spec=m.ScoreRequest)
    def score(
        self, customer_ids: list[int] | None = None, rows: list[m.FeatureRow] | None = None
    ) -> m.ScoreResponse:
        """Score customers by id (stored features) or feature rows: probability, tier, value at
        risk, reasons, next-best products, action and contact decision. Unknown ids come back
        in `errors`."""
        started = time.perf_counter()
        state = self._state
        champion = state.champion
        try:
            limit = self.config.serving.max_batch
            items = customer_ids if customer_ids is not None else rows
            if len(items) > limit:
                field = "customer_ids" if customer_ids is not None else "rows"
                raise ApiError(
                    400, f"{field}: {len(items)} items, more than the limit of {limit} per request"
                )
            if customer_ids is not None:
                batch, errors = self._by_id(state.customers, customer_ids)
            else:
                batch, errors = self._by_row(state.customers, rows, champion.bundle), []
            out = self._decide(champion.bundle, batch) if batch.order else {}
        except ApiError as error:
            return error.response()
        scores = [_customer_score(index, customer, out, j) for j, (index, customer) in enumerate(batch.order)]
        request_id = uuid.uuid4().hex
        if scores:
            self._log("score", request_id, champion, batch, scores, started)
        return m.ScoreResponse(
            request_id=request_id,
            model_version=champion.version,
            features_as_of=state.customers.as_of if customer_ids is not None else None,
            scores=scores,
            errors=errors,
        )

    def _by_id(self, customers: Customers, ids: list[int]) -> tuple[_Batch, list[m.ItemError]]:
        if (repeated := _first_repeated(ids)) is not None:
            raise ApiError(400, f"customer_ids: {repeated} appears more than once")
        found = [(i, c, customers.position.get(c)) for i, c in enumerate(ids)]
        positions = [p for _, _, p in found if p is not None]
        keys, x, context = customers.rows(positions)
        order = [(i, c) for i, c, p in found if p is not None]
        errors = [
            m.ItemError(index=i, customer_id=c, error="unknown customer: not in the latest feature table")
            for i, c, p in found
            if p is None
        ]
        return _Batch(keys, x, context, order), errors

    def _by_row(self, customers: Customers, rows: list[m.FeatureRow], bundle: ModelBundle) -> _Batch:
        given = [r.customer_id for r in rows if r.customer_id is not None]
        if (repeated := _first_repeated(given)) is not None:
            raise ApiError(400, f"rows: customer_id {repeated} appears more than once")
        keys = [r.customer_id if r.customer_id is not None else -(i + 1) for i, r in enumerate(rows)]
        names = set(bundle.feature_names)
        for i, row in enumerate(rows):
            unknown = sorted(set(row.features) - names)
            if unknown:
                raise ApiError(400, f"rows[{i}].features.{unknown[0]}: not a feature of the model")
            missing = [n for n in bundle.feature_names if n not in row.features]
            if missing:
                raise ApiError(
                    400, f"rows[{i}].features.{missing[0]}: missing ({len(missing)} missing in all)"
                )
        features = pd.DataFrame([r.features for r in rows], index=pd.Index(keys, name="customer_id"))
        try:
            prepared = bundle.prepare(features)
        except FeatureSchemaError as exc:
            bad = _first_bad_row(bundle, features)
            raise ApiError(400, f"rows[{bad}].features.{exc}") from None
        context: dict[str, list[Any]] = {column: [] for column in CUSTOMER_COLUMNS}
        for key, row in zip(keys, rows, strict=True):
            stored = customers.position.get(key)
            for column in CUSTOMER_COLUMNS:
                value = getattr(row, column) if stored is None else customers.context[column][stored]
                context[column].append(value)
        return _Batch(
            np.array(keys, dtype=np.int64),
            bundle.matrix(prepared),
            {column: np.array(values, dtype=object) for column, values in context.items()},
            [(i, r.customer_id) for i, r in enumerate(rows)],
        )

    def _decide(self, bundle: ModelBundle, batch: _Batch) -> dict[str, np.ndarray]:
        """The scoring core for this batch, with contacts counted up to now."""
        now = pd.Timestamp.now(tz="UTC").tz_localize(None)
        known = [int(c) for c in batch.ids if c >= 0]  # rows without an id have no contacts
        history = contact_history_arrays(*self.store.contacts(known), batch.ids, now)
        return decide(bundle, batch.x, batch.ids, batch.context, history, self.config)

    # -- POST /explain ---------------------------------------------------------------------------
    @bentoml.api(route="/explain", input_spec=m.ExplainRequest)
    def explain(self, customer_id: int | None = None, row: m.FeatureRow | None = None) -> m.Explanation:
        """The full SHAP contribution list for one customer, with feature values and reason texts."""
        started = time.perf_counter()
        state = self._state
        champion = state.champion
        bundle = champion.bundle
        try:
            if customer_id is not None:
                position = state.customers.position.get(customer_id)
                if position is None:
                    raise ApiError(404, f"customer_id: unknown customer {customer_id}")
                x = state.customers.x[[position]]
            else:
                x = self._by_row(state.customers, [row], bundle).x
        except ApiError as error:
            return error.response()
        contributions = bundle.contributions_array(x)
        families = sorted(set(bundle.families.values()))
        reasons = bundle.reasons(x, contributions, top=len(families))[0]
        values = contributions[0]
        record = bundle.row_values(x[0])
        listed = sorted(range(len(bundle.feature_names)), key=lambda j: -abs(values[j]))
        request_id = uuid.uuid4().hex
        probability = float(bundle.churn_probability(x)[0])
        explanation = m.Explanation(
            request_id=request_id,
            model_version=champion.version,
            customer_id=customer_id if customer_id is not None else row.customer_id,
            churn_probability=probability,
            base_value=float(values[-1]),
            margin=float(values.sum()),
            reasons=[m.Reason(code=r.code, text=r.text, contribution=r.contribution) for r in reasons],
            contributions=[
                m.Contribution(
                    feature=bundle.feature_names[j],
                    family=bundle.families[bundle.feature_names[j]],
                    value=record[bundle.feature_names[j]],
                    contribution=float(values[j]),
                )
                for j in listed
            ],
        )
        risk_tier = str(tiers(np.array([probability]), self.config.scoring.tiers)[0])
        self.log.put(
            [
                self._log_row(
                    "explain",
                    request_id,
                    champion.version,
                    explanation.customer_id,
                    record,
                    {"churn_probability": probability, "risk_tier": risk_tier},
                    started,
                )
            ]
        )
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
        ctx: bentoml.Context,
        action: str | None = None,
        offer_accepted: bool | None = None,
        customer_status: str = "unknown",
    ) -> m.OutcomeRecorded:
        """Record what happened after a contact; the contact policy counts it from now on.
        Idempotent on `event_id`: 201 when recorded, 200 when already recorded the same way,
        409 when the id was used for different content."""
        try:
            when = pd.Timestamp(contacted_at)
            when = when.tz_convert("UTC").tz_localize(None) if when.tzinfo else when
            now = pd.Timestamp.now(tz="UTC").tz_localize(None)
            if when > now + pd.Timedelta(minutes=5):
                raise ApiError(400, "contacted_at: in the future")
            actions = self.config.playbook.actions if self.config.playbook else {}
            if action is not None and action not in actions:
                raise ApiError(
                    400, f"action: unknown action {action!r} (expected one of {', '.join(actions)})"
                )
            if customer_id not in self._state.customers.position:
                raise ApiError(404, f"customer_id: unknown customer {customer_id}")
            outcome = Outcome(
                event_id, customer_id, when, channel, action, reached, offer_accepted, customer_status
            )
            try:
                created = self.store.record_outcome(outcome, now)
            except OutcomeConflict as exc:
                raise ApiError(409, str(exc)) from None
        except ApiError as error:
            ctx.response.status_code = error.status  # BentoML applies the context's status
            return error.response()
        ctx.response.status_code = 201 if created else 200
        return m.OutcomeRecorded(event_id=event_id, status="recorded" if created else "duplicate")

    # -- GET /risk-list and /model-info (FastAPI, mounted) ------------------------------------------
    @rest.get("/risk-list", response_model=m.RiskListPage, responses={404: {"description": "No list"}})
    def risk_list(
        self,
        as_of: Annotated[dt.date | None, Query(description="List date; the latest when omitted")] = None,
        team: Annotated[str | None, Query(max_length=64, description="Owner team of the action")] = None,
        branch: Annotated[str | None, Query(max_length=32)] = None,
        segment: Annotated[str | None, Query(max_length=32)] = None,
        tier: m.RiskTier | None = None,
        contacted_only: Annotated[bool, Query(description="Only the customers planned for contact")] = True,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ):
        """The stored daily list, filtered and paginated (ranked by expected saving)."""
        if limit > self.config.serving.page_size_limit:
            return JSONResponse(
                {"error": f"limit: at most {self.config.serving.page_size_limit}"}, status_code=400
            )
        date = as_of.isoformat() if as_of else self.store.latest_list_date()
        filters = {"action_owner": team, "branch_id": branch, "segment": segment, "risk_tier": tier}
        total, page, run = (
            self.store.risk_list(date, filters, contacted_only, limit, offset) if date else (0, None, None)
        )
        if run is None:
            return JSONResponse({"error": f"as_of: no risk list for {date or 'any date'}"}, status_code=404)
        return m.RiskListPage(
            as_of=date,
            model_version=run.get("model_version"),
            total=total,
            limit=limit,
            offset=offset,
            items=[_list_item(r) for r in page.to_dict("records")],
        )

    @rest.get("/model-info", response_model=m.ModelInfo)
    def model_info(self):
        """The champion being served: version, training date, headline metrics, feature schema."""
        champion = self._state.champion
        training = champion.bundle.meta.get("training", {})
        return m.ModelInfo(
            model_name=self.config.mlflow.model_name,
            version=champion.version,
            alias="champion",
            trained_at=training.get("trained_at"),
            training_split={k: str(v) for k, v in training.get("split", {}).items()},
            metrics={k: float(v) for k, v in champion.info["metrics"].items()},
            feature_schema_hash=champion.bundle.schema_hash,
            features=len(champion.bundle.feature_names),
            loaded_at=champion.info["loaded_at"],
        )

    # -- the prediction log ----------------------------------------------------------------------
    def _log(self, endpoint, request_id, champion: Champion, batch: _Batch, scores, started) -> None:
        rows = []
        for j, score in enumerate(scores):
            outputs = score.model_dump(exclude={"customer_id", "index"})
            record = champion.bundle.row_values(batch.x[j])
            rows.append(
                self._log_row(
                    endpoint, request_id, champion.version, score.customer_id, record, outputs, started
                )
            )
        self.log.put(rows)

    def _log_row(
        self, endpoint, request_id, version, customer_id, features, outputs, started
    ) -> dict[str, Any]:
        return {
            "logged_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            "request_id": request_id,
            "endpoint": endpoint,
            "model_version": version,
            "customer_key": None if customer_id is None else pseudonymise(self._pseudonym_key, customer_id),
            "churn_probability": outputs["churn_probability"],
            "risk_tier": outputs["risk_tier"],
            "features": json.dumps(features),
            "outputs": json.dumps(outputs, default=str),
            "latency_ms": (time.perf_counter() - started) * 1000,
        }


ChurnService.add_asgi_middleware(_LazyGuard)


# -- helpers ---------------------------------------------------------------------------------------
def _settle_memory() -> None:
    """Collect, then freeze what is alive (modules, the model, the customers) out of the garbage
    collector's reach. Without this a full collection scans some 450,000 long-lived objects and
    stalls every request for about 250 ms; frozen objects are still freed by reference counting."""
    gc.collect()
    gc.freeze()


def _first_repeated(ids: list[int]) -> int | None:
    """The first id that appears a second time, or None."""
    seen: set[int] = set()
    for customer_id in ids:
        if customer_id in seen:
            return customer_id
        seen.add(customer_id)
    return None


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _first_bad_row(bundle: ModelBundle, features: pd.DataFrame) -> int:
    for i in range(len(features)):
        try:
            bundle.prepare(features.iloc[[i]])
        except FeatureSchemaError:
            return i
    return 0


def _reasons(row: dict[str, Any]) -> list[m.Reason]:
    return [
        m.Reason(
            code=row[f"reason_{k}_code"],
            text=row[f"reason_{k}_text"],
            contribution=float(row[f"reason_{k}_contribution"]),
        )
        for k in range(1, TOP + 1)
        if row.get(f"reason_{k}_code") not in (None, "") and not pd.isna(row.get(f"reason_{k}_code"))
    ]


def _customer_score(
    index: int, customer_id: int | None, out: dict[str, np.ndarray], row: int
) -> m.CustomerScore:
    r = {column: _item(values[row]) for column, values in out.items()}
    action = None
    if r["action"] is not None and not pd.isna(r["action"]):
        action = m.Action(
            code=r["action"],
            channel=r["action_channel"],
            owner=r["action_owner"],
            description=r["action_description"],
            expected_saving=float(r["expected_saving"]),
        )
    return m.CustomerScore(
        index=index,
        customer_id=customer_id,
        churn_probability=float(r["churn_probability"]),
        risk_tier=r["risk_tier"],
        value=_number(r["value"]),
        value_at_risk=_number(r["value_at_risk"]),
        value_tier=r["value_tier"],
        reasons=_reasons(r),
        next_best_products=[
            m.ProductPropensity(
                product=r[f"next_product_{k}"], propensity=float(r[f"next_product_{k}_propensity"])
            )
            for k in range(1, TOP + 1)
            if r[f"next_product_{k}"] is not None and not pd.isna(r[f"next_product_{k}"])
        ],
        action=action,
        control_group=bool(r["control_group"]),
        contact=bool(r["contact"]),
        contact_rule=str(r["contact_rule"]),
    )


def _list_item(r: dict[str, Any]) -> m.RiskListItem:
    rank = r.get("list_rank")
    return m.RiskListItem(
        customer_id=int(r["customer_id"]),
        list_rank=None if rank is None or pd.isna(rank) else int(rank),
        churn_probability=float(r["churn_probability"]),
        risk_tier=r["risk_tier"],
        value=_number(r.get("value")),
        value_at_risk=_number(r.get("value_at_risk")),
        expected_saving=_number(r.get("expected_saving")),
        action=r.get("action"),
        action_channel=r.get("action_channel"),
        action_owner=r.get("action_owner"),
        branch_id=r.get("branch_id"),
        segment=r.get("segment"),
        region=r.get("region"),
        reasons=_reasons(r),
        next_best_products=[
            r[f"next_product_{k}"] for k in range(1, TOP + 1) if r.get(f"next_product_{k}") not in (None, "")
        ],
        contact=bool(r["contact"]),
        contact_rule=r.get("contact_rule"),
    )
