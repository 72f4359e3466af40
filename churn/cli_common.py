"""What every `churn` subcommand module shares: the Typer app, the common options, the user error
and the config loading with command-line overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churn.config import AppConfig, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Bank churn: data, features, models, scores.",
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config; configs/default.yaml when omitted.", show_default=False
    ),
]
DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Tables directory (Parquet/CSV) or SQLAlchemy URL; overrides data.source.",
        show_default=False,
    ),
]


EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="local (pandas in this process) or dask (one task per customer partition) [config: engine.kind].",
        show_default=False,
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786; implies --engine dask "
        "[config: engine.scheduler; a LocalCluster when unset].",
        show_default=False,
    ),
]


class UserError(Exception):
    """An error the user can fix; printed as one message, exit code 2."""


def _config(
    path: Path | None, data: str | None = None, engine: str | None = None, scheduler: str | None = None
) -> AppConfig:
    config = load_config(path)
    if data is not None:
        config = config.model_copy(update={"data": config.data.model_copy(update={"source": data})})
    if engine is not None and engine not in ("local", "dask"):
        raise UserError(f"--engine: {engine!r} is not one of local, dask")
    if engine == "local" and scheduler:
        raise UserError("--scheduler: a Dask scheduler needs --engine dask")
    updates = {"kind": "dask" if scheduler else engine, "scheduler": scheduler}
    updates = {k: v for k, v in updates.items() if v is not None}
    if updates:
        config = config.model_copy(update={"engine": config.engine.model_copy(update=updates)})
    return config
