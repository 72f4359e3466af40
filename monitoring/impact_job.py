"""`churn impact`: the campaigns' contacted customers against their controls, written and logged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from churn.config import AppConfig
from monitoring.impact import headline, impact_tables

EXPERIMENT = "churn-impact"
NOTHING_TO_JUDGE = "impact                no campaign whose horizon has ended: nothing to judge"


def recorded_outcomes(url: str) -> pd.DataFrame:
    """Outcomes CRM systems recorded through `/contact-outcome`: customer, month and what happened
    (not_reached, reached, accepted, declined)."""
    import sqlalchemy as sa

    from serving.tables import contact_history, make_engine

    empty = pd.DataFrame({"customer_id": [], "month": [], "outcome": []})
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table(contact_history.name):
            return empty
        c = contact_history.c
        with engine.connect() as connection:
            found = connection.execute(
                sa.select(c.customer_id, c.contacted_at, c.reached, c.offer_accepted).where(
                    c.source == "api", ~c.control_group
                )
            ).all()
    except sa.exc.OperationalError:  # the database is down: the bank's own outcomes still count
        return empty
    finally:
        engine.dispose()
    if not found:
        return empty
    frame = pd.DataFrame(found, columns=["customer_id", "contacted_at", "reached", "offer_accepted"])
    reached = frame["reached"].astype(bool)
    accepted = frame["offer_accepted"]
    frame["outcome"] = np.where(
        ~reached,
        "not_reached",
        np.where(accepted.eq(True), "accepted", np.where(accepted.eq(False), "declined", "reached")),
    )
    frame["month"] = pd.to_datetime(frame["contacted_at"]).dt.to_period("M").dt.to_timestamp()
    return frame.sort_values("contacted_at").drop_duplicates(["customer_id", "month"], keep="last")[
        ["customer_id", "month", "outcome"]
    ]


def impact_rows(
    tables: dict[str, pd.DataFrame], months: tuple[pd.Timestamp, pd.Timestamp] | None, config: AppConfig
) -> pd.DataFrame:
    """The campaigns' customers (their own controls only) with churn, value, cost, team, branch:
    of one partition (`months`: the whole bank's first and last month-end) or a whole bank."""
    from features.campaigns import CONTROL, campaign_rows
    from features.value import customer_value

    rows = campaign_rows(tables, config, not_drawn_share=0.0, months=months)
    if rows.empty:
        return rows
    playbook = config.playbook
    products = {code: p.model_dump() for code, p in config.products.items()}
    value = customer_value(rows, len(rows), products, config.value.years, config.value.discount_rate)
    control = (rows["arm"] == CONTROL).to_numpy()
    action = rows["arm"].where(~control, None)
    costs = {name: a.cost for name, a in playbook.actions.items()}
    owners = {name: a.owner for name, a in playbook.actions.items()}
    contacts = tables["contacts"].assign(month=lambda c: c["ts"].dt.to_period("M").dt.to_timestamp())
    outcome = contacts.drop_duplicates(["customer_id", "month"]).set_index(["customer_id", "month"])[
        "outcome"
    ]
    branch = tables["customers"].set_index("customer_id")["branch_id"].astype(str)
    return pd.DataFrame(
        {
            "customer_id": rows["customer_id"].to_numpy(),
            "campaign": rows["campaign"].astype(str).to_numpy(),
            "month": pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m").to_numpy(),
            "action": action.to_numpy(),
            "team": action.map(owners).to_numpy(),
            "branch_id": branch.reindex(rows["customer_id"]).to_numpy(),
            "control": control,
            "churn": rows["churn"].to_numpy().astype(int),
            "value": np.nan_to_num(value, nan=0.0),
            "cost": action.map(costs).fillna(0.0).to_numpy(dtype=float),
            "outcome": outcome.reindex(
                pd.MultiIndex.from_arrays([rows["customer_id"], pd.to_datetime(rows["as_of"])])
            )
            .astype(str)
            .to_numpy(),
        }
    )


def run_impact(config: AppConfig, min_control: int = 30) -> list[str]:
    """Build, write (`<output>/impact/<last month>/`) and log the impact tables; the summary lines."""
    from features.partition_work import gather_configured

    pieces = gather_configured(config, impact_rows).pieces
    pieces = [p for p in pieces if not p.empty]
    if not pieces:
        return [NOTHING_TO_JUDGE]
    # the partitions' rows in the whole bank's order (month, then customer), so sums add alike
    rows = pd.concat(pieces, ignore_index=True).sort_values(["month", "customer_id"], kind="stable")
    rows = rows.reset_index(drop=True)
    tables_out = impact_tables(rows, min_control)
    month = rows["month"].max()
    out = config.output_path / "impact" / month
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables_out.items():
        table.to_csv(out / f"{name}.csv")
    overall = tables_out["overall"].iloc[0].to_dict()
    (out / "impact.json").write_text(json.dumps(overall, indent=2, default=str) + "\n")
    lines = headline(tables_out)
    _log(config, tables_out, out)
    return [*lines, f"written to            {out} (CSV per slice, impact.json) and MLflow {EXPERIMENT}"]


def _log(config: AppConfig, tables: dict[str, pd.DataFrame], out) -> None:
    import mlflow

    from training.tracking import configure_tracking

    configure_tracking(config, experiment=EXPERIMENT)
    overall = tables["overall"].iloc[0]
    metrics = {
        k: float(v)
        for k, v in overall.items()
        if isinstance(v, int | float | np.floating) and np.isfinite(float(v))
    }
    with mlflow.start_run(run_name=f"impact {out.name}"):
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(out), "impact")
