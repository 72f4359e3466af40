"""`churn simulate`: what works, asked of the simulated bank (the commands of the retention loop)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from churn.cli_common import ConfigOption, DataOption, UserError, _config, app


@app.command()
def simulate(
    bank: Annotated[Path, typer.Option(help="A bank written by `churn generate` (its manifest.json).")],
    list_file: Annotated[
        Path, typer.Option("--list", help="Parquet or CSV with customer_id, action and a contact flag.")
    ],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON here.")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=100, help="Repeated continuations for the interval.")] = 5,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="The list's date; its as_of column, else the bank's end."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Score a list on the simulated bank: continue it from the list's date with the list's contacts
    and without them (common random numbers) and report what the contacts saved and cost."""
    import pandas as pd

    from features.bank.simulate import SimulationError, read_list, simulate_with_config

    cfg = _config(config)
    try:
        figures = simulate_with_config(
            bank, read_list(list_file), cfg, seeds, None if as_of is None else pd.Timestamp(as_of)
        )
    except SimulationError as exc:
        raise UserError(str(exc)) from None

    def ci(name: str) -> str:
        low, high = figures[f"{name}_interval"]
        return f"{figures[name]:,.1f} (95% interval {low:,.1f} .. {high:,.1f})"

    typer.echo(
        f"list                  {figures['as_of']}: {figures['contacted']} contacted of {figures['listed']} rows"
    )
    typer.echo(f"horizon               {figures['horizon_months']} months, {figures['seeds']} continuations")
    typer.echo(f"saved customers       {ci('saved_customers')}")
    typer.echo(f"value saved           {ci('value_saved')}")
    typer.echo(f"cost                  {figures['cost']:,.1f}")
    typer.echo(f"net value             {ci('net_value')}")
    typer.echo(f"sleeping dogs         {figures['sleeping_dogs_contacted']} contacted")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(figures, indent=2) + "\n")
        typer.echo(f"written to            {json_out}")


@app.command()
def impact(
    min_control: Annotated[
        int, typer.Option(min=2, help="Fewer controls (or contacts) than this in a slice: too few to judge.")
    ] = 30,
    config: ConfigOption = None,
    data: DataOption = None,
) -> None:
    """What the campaigns kept: contacted vs control customers per campaign, action, team, branch and
    month whose horizon has ended, with intervals, value kept, cost and return on spend."""
    from monitoring.impact_job import run_impact

    typer.echo("== impact of past campaigns")
    for line in run_impact(_config(config, data), min_control):
        typer.echo(line)
