"""`churn generate`, `load-db`, `partition`, `purge` and `secrets-init`: the commands that make,
move, partition and erase data and write the secrets, beside the jobs in `churn.cli`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from churn.cli_common import ConfigOption, DataOption, SchedulerOption, UserError, _config, app


@app.command()
def generate(
    out: Annotated[Path, typer.Option(help="Directory to write the tables (and truth/) into.")] = Path(
        "data/sample"
    ),
    customers: Annotated[
        int | None, typer.Option(help="Number of customers [config: generator.customers].")
    ] = None,
    months: Annotated[int | None, typer.Option(help="Months simulated [config: generator.months].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [config: generator.seed].")] = None,
    start: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day of the first month.")
    ] = None,
    activity: Annotated[float | None, typer.Option(help="Multiplier of transaction and login rates.")] = None,
    exploration_share: Annotated[
        float | None,
        typer.Option(
            help="Share of the book the bank's test-and-learn draws each month at random "
            "[config: generator.exploration_share]."
        ),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(help="A drift in the last months: rate_campaign, app_outage or channel_recode."),
    ] = None,
    drift_months: Annotated[int, typer.Option(help="Months the scenario covers, at the end.", min=1)] = 2,
    drift_region: Annotated[str, typer.Option(help="Region of the rate_campaign scenario.")] = "North",
    config: ConfigOption = None,
) -> None:
    """Generate a synthetic bank (six Parquet tables plus the generator's ground truth)."""
    from features.generator import generate_bank, write_bank

    defaults = _config(config).generator
    values = {
        "customers": customers if customers is not None else defaults.customers,
        "months": months if months is not None else defaults.months,
        "seed": seed if seed is not None else defaults.seed,
        "start": (start.date() if start is not None else defaults.start),
        "activity": activity if activity is not None else defaults.activity,
        "exploration_share": exploration_share
        if exploration_share is not None
        else defaults.exploration_share,
        "churn_type_shares": defaults.churn_type_shares,
    }
    try:
        checked = type(defaults).model_validate(values)
    except Exception as exc:
        raise UserError(str(exc)) from None
    try:
        bank = generate_bank(
            customers=checked.customers,
            months=checked.months,
            seed=checked.seed,
            start=str(checked.start),
            activity=checked.activity,
            scenario=scenario,
            drift_months=drift_months,
            drift_region=drift_region,
            type_shares=checked.churn_type_shares,
            exploration_share=checked.exploration_share,
        )
    except ValueError as exc:  # an unknown scenario or region, too many drift months
        raise UserError(str(exc)) from None
    write_bank(bank, out)
    rows = ", ".join(f"{name} {len(frame):,}" for name, frame in bank.tables.items())
    typer.echo(f"wrote {out}: {rows}")


@app.command("load-db")
def load_db(
    url: Annotated[str, typer.Option(help="SQLAlchemy URL of the database to write the tables into.")],
    config: ConfigOption = None,
    data: DataOption = None,
) -> None:
    """Copy validated tables into a SQL database (tables are replaced)."""
    from features.io import write_tables_to_database
    from features.jobs import load_validated

    validated = load_validated(_config(config, data))
    write_tables_to_database(validated.tables, url)
    typer.echo(f"wrote {len(validated.tables)} tables to {url.split('@')[-1]}")


@app.command()
def partition(
    out: Annotated[Path, typer.Option(help="Directory to write the customer-partitioned dataset into.")],
    customers_per_partition: Annotated[
        int | None,
        typer.Option(min=1, help="Customers per partition [config: engine.partition_customers]."),
    ] = None,
    config: ConfigOption = None,
    data: DataOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Partition a directory of flat tables by customer, with Dask: the layout the dask engine reads."""
    from churn.cluster import dask_client
    from features.partitioned import partition_count, partition_tables

    cfg = _config(config, data, "dask", scheduler)
    per_partition = customers_per_partition or cfg.engine.partition_customers
    with dask_client(cfg.engine):
        rows = partition_tables(cfg.data.source, out, per_partition)
    typer.echo(
        f"wrote {out}: {partition_count(out)} partitions of up to {per_partition:,} customers; "
        + ", ".join(f"{name} {n:,}" for name, n in rows.items())
    )


@app.command()
def purge(
    customer: Annotated[
        int | None,
        typer.Option(
            min=1, help="Erase this customer from every list, table, log and file the product wrote."
        ),
    ] = None,
    expired: Annotated[
        bool, typer.Option(help="Delete what is older than its retention period [config: privacy].")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Apply the retention periods, or erase one customer on request (README, Privacy)."""
    from serving.privacy import describe, erase, expire

    if (customer is None) == (not expired):
        raise UserError("purge: give --customer ID or --expired (one of them)")
    cfg = _config(config)
    if expired:
        typer.echo(f"removed (older than the retention periods): {describe(expire(cfg))}")
        return
    from serving.auth import load_secrets

    key = load_secrets(cfg.serving.secrets_file).pseudonym_key.get_secret_value()
    removed = erase(cfg, customer, key)
    # the id is the caller's own input; the output names only what was removed
    typer.echo(f"erased the customer: {describe(removed)} (recorded in erasure_log by pseudonym)")


@app.command("secrets-init")
def secrets_init(config: ConfigOption = None) -> None:
    """Write the secrets file (a read key, a read+write key, the pseudonymisation key) if missing."""
    from serving.auth import init_secrets_file

    path = _config(config).serving.secrets_file
    created = init_secrets_file(path)
    typer.echo(
        f"{'wrote' if created else 'kept the existing'} secrets file {path} (owner-only; keys are not printed)"
    )
