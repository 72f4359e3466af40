"""The `churn` command line: one Typer app whose subcommands grow with each capability.

Heavy libraries are imported inside the commands, so `churn --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from churn.cli_common import (
    ConfigOption,
    DataOption,
    EngineOption,
    SchedulerOption,
    UserError,
    _config,
    app,
)
from churn.config import AppConfig, ConfigError


def _with_tuning(config: AppConfig, tune: bool, minutes: float | None) -> AppConfig:
    """The config with `--tune` / `--tune-minutes` applied, validated like the YAML."""
    if not tune and minutes is None:
        return config
    from pydantic import ValidationError

    values = config.training.tuning.model_dump() | {"enabled": True}
    if minutes is not None:
        values["minutes"] = minutes
    try:
        tuning = type(config.training.tuning).model_validate(values)
    except ValidationError as exc:
        raise UserError(f"--tune-minutes: {exc.errors()[0]['msg']}") from None
    return config.model_copy(update={"training": config.training.model_copy(update={"tuning": tuning})})


@app.command()
def validate(config: ConfigOption = None, data: DataOption = None) -> None:
    """Validate the six tables; rejected rows are written with their reasons."""
    from features.partition_work import gather_configured, total_valid_rows, valid_rows

    cfg = _config(config, data)
    gathered = gather_configured(cfg, valid_rows)
    for name, rows in total_valid_rows(gathered.pieces).items():
        typer.echo(f"{name:<13} {rows:>10,} valid  {gathered.rejects[name]:>8,} rejected")
    typer.echo(f"rejects written to {cfg.output_path / 'rejects'} ({gathered.parts.source.describe()})")


@app.command()
def features(
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="As-of date; latest labelled month when omitted."),
    ] = None,
    doc: Annotated[
        Path | None, typer.Option(help="Write the feature catalogue as Markdown to this file and stop.")
    ] = None,
    config: ConfigOption = None,
    data: DataOption = None,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Build point-in-time features and labels for one as-of date."""
    cfg = _config(config, data, engine, scheduler)
    if doc is not None:
        from features.catalog import catalog_markdown

        doc.write_text(catalog_markdown(cfg.features, tuple(cfg.products)))
        typer.echo(f"wrote {doc}")
        return
    from features.jobs import run_features

    for line in run_features(cfg, as_of).lines():
        typer.echo(line)


@app.command()
def train(
    config: ConfigOption = None,
    data: DataOption = None,
    metrics_json: Annotated[
        Path | None, typer.Option(help="Write the held-out metrics (and CV metrics) to this JSON file.")
    ] = None,
    cv: Annotated[
        int,
        typer.Option(help="Add K-fold cross-validated metrics (a table brought with `source:` only).", min=0),
    ] = 0,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    tune: Annotated[
        bool,
        typer.Option(
            help="Search the churn model's hyperparameters first (Optuna), under the explanation budget "
            "[config: training.tuning.enabled]."
        ),
    ] = False,
    tune_minutes: Annotated[
        float | None,
        typer.Option(
            help="Time budget of the search in minutes; implies --tune [config: training.tuning.minutes].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train, log the run to MLflow and register the model as `challenger`.

    With `source:` in the config, trains on the bank's own customer-level table.
    """
    from training.jobs import run_training

    cfg = _with_tuning(_config(config, data, engine, scheduler), tune, tune_minutes)
    for line in run_training(cfg, metrics_json=metrics_json, cv_folds=cv).lines:
        typer.echo(line)


@app.command()
def promote(
    force: Annotated[
        bool, typer.Option(help="Promote even if the challenger is not better or fails a gate.")
    ] = False,
    config: ConfigOption = None,
    data: DataOption = None,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Compare `challenger` with `champion` on the latest labelled snapshot; move `champion` if better."""
    from training.jobs import run_promotion

    for line in run_promotion(_config(config, data, engine, scheduler), force=force):
        typer.echo(line)


@app.command()
def score(
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Scoring date; the day after the data's last month-end when omitted."
        ),
    ] = None,
    config: ConfigOption = None,
    data: DataOption = None,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
    ranking: Annotated[
        str | None,
        typer.Option(
            help="uplift (ranked by learned uplift, the action by uplift.choose), probability (the playbook's "
            "action and effect) or auto (uplift once its held-out Qini interval is above zero) "
            "[config: uplift.ranking].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score every customer with the champion model and write the day's risk list (files, database, HTML)."""
    from serving.list_job import run_daily_list

    cfg = _config(config, data, engine, scheduler)
    if ranking is not None:
        if ranking not in ("auto", "uplift", "probability"):
            raise UserError(f"--ranking: {ranking!r} is not one of auto, uplift, probability")
        cfg = cfg.with_uplift(ranking=ranking)
    _, lines = run_daily_list(cfg, as_of)
    for line in lines:
        typer.echo(line)


@app.command()
def report(
    months: Annotated[
        int, typer.Option(min=1, max=120, help="Months to report, ending at the last the data confirms.")
    ] = 12,
    config: ConfigOption = None,
    data: DataOption = None,
) -> None:
    """Churn by kind, cause, branch, region and segment; customers gained and lost; the share
    that is the bank's own fault (HTML, plots, CSV and an MLflow run)."""
    from monitoring.churn_report_job import run_report

    for line in run_report(_config(config, data), months):
        typer.echo(line)


ALERT_EXIT_CODE = 3


def _window(value: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*d?\s*", value)
    if not match or int(match.group(1)) < 1:
        raise typer.BadParameter(f"{value!r}: expected a number of days such as 30d")
    return int(match.group(1))


@app.command()
def monitor(
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Last day of the window; the latest daily list when omitted."
        ),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(help="Days before --as-of to check, e.g. 30d [config: monitoring.window_days]."),
    ] = None,
    retrain_on_breach: Annotated[
        bool,
        typer.Option(help="On a breached model threshold, train a challenger and run the promotion."),
    ] = False,
    impact: Annotated[
        bool,
        typer.Option(
            help="Judge the campaigns against their controls afresh from the bank (`churn impact`); "
            "--no-impact reads the latest figures written."
        ),
    ] = True,
    config: ConfigOption = None,
    data: DataOption = None,
) -> None:
    """Drift and data quality of what was scored, against the model's training reference, and
    what the campaigns kept against their controls.

    Exit code 0: no threshold breached; 3: an alert was raised (recorded in `monitoring_alerts`).
    """
    from monitoring.monitor import run_monitor

    cfg = _config(config, data)
    result = run_monitor(cfg, as_of, _window(window) if window else None, refresh_impact=impact)
    for line in result.lines:
        typer.echo(line)
    if not result.alerts:
        return
    if retrain_on_breach and result.model_alerts:
        from training.jobs import run_promotion, run_training

        typer.echo("== retraining (threshold breached)")
        for line in run_training(cfg).lines:
            typer.echo(line)
        for line in run_promotion(cfg):
            typer.echo(line)
    raise typer.Exit(ALERT_EXIT_CODE)


@app.command()
def serve(
    config: ConfigOption = None,
    port: Annotated[int | None, typer.Option(help="Port; serving.port from the config when omitted.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Start the scoring API on the champion model (BentoML); needs the daily job's tables and secrets."""

    from churn.supervise import run_supervised
    from serving.auth import load_secrets

    cfg = _config(config)
    load_secrets(cfg.serving.secrets_file)  # fail here, with the reason, rather than in a worker
    env = dict(os.environ)
    if config is not None:
        env["CHURN_CONFIG"] = str(config.resolve())
    env["BENTOML_CONFIG_OPTIONS"] = f"services.churn_scoring.workers={workers}"
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [
        str(bentoml),
        "serve",
        "serving.service:ChurnService",
        "--host",
        host,
        "--port",
        str(port or cfg.serving.port),
    ]
    raise SystemExit(run_supervised(command, env))  # SIGTERM/SIGINT stop the whole server


@app.command()
def run(
    config: ConfigOption = None,
    data: DataOption = None,
    engine: EngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """The main job: features and labels, train, register, promote, the day's risk list, monitoring."""
    cfg = _config(config, data, engine, scheduler)
    typer.echo(f"data source           {cfg.data.source}")
    typer.echo(
        f"engine                {cfg.engine.kind}"
        + (f" ({cfg.engine.scheduler})" if cfg.engine.scheduler else "")
    )
    with ExitStack() as stack:
        if cfg.engine.kind == "dask":
            from churn.cluster import dask_client

            stack.enter_context(dask_client(cfg.engine))  # one cluster for every step
        _run_steps(cfg)


def _run_steps(cfg: AppConfig) -> None:
    from features.jobs import run_features
    from training.jobs import run_promotion, run_training

    typer.echo("== features and labels")
    for line in run_features(cfg).lines():
        typer.echo(line)
    typer.echo("== training")
    for line in run_training(cfg).lines:
        typer.echo(line)
    typer.echo("== promotion")
    for line in run_promotion(cfg):
        typer.echo(line)
    # before the list, so the day's page shows what past campaigns kept
    typer.echo("== impact of past campaigns")
    from monitoring.impact_job import run_impact

    for line in run_impact(cfg):
        typer.echo(line)
    typer.echo("== daily risk list")
    from serving.list_job import run_daily_list

    for line in run_daily_list(cfg)[1]:
        typer.echo(line)
    typer.echo("== monitoring")
    from monitoring.monitor import run_monitor

    # an alert is reported and recorded (`churn monitor` exits 3); the impact was judged above
    for line in run_monitor(cfg, refresh_impact=False).lines:
        typer.echo(line)
    typer.echo("== churn report")
    from monitoring.churn_report_job import run_report

    for line in run_report(cfg):
        typer.echo(line)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 2 bad input or configuration."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # MLflow draws a progress bar for every artifact download (a bundle is four files): noise in a
    # job's log
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from features.memory import use_system_arrow_pool

    use_system_arrow_pool()  # before anything loads Arrow
    from churn.supervise import Terminated, stop_on_sigterm
    from features.io import SourceError
    from features.validation import TableValidationError

    stop_on_sigterm()
    try:
        # standalone mode: Typer prints usage errors itself and exits with code 2
        app(args=argv, prog_name="churn")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Terminated:  # clean-up has run on the way out
        typer.echo("stopped: SIGTERM", err=True)
        return 128 + signal.SIGTERM
    except (ConfigError, SourceError, TableValidationError, UserError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except ValueError as exc:
        # domain checks (a table brought by the bank, a feature schema, data too short for a
        # snapshot, ...) raise ValueError subclasses with a readable message
        typer.echo(f"error: {exc}", err=True)
        return 2
    return 0


# the data, retention-loop and desk commands register themselves on the same app
from churn import cli_data, cli_desk, cli_retention  # noqa: E402, F401


def entry_point() -> None:
    """Console-script entry: exit with `main`'s code."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
