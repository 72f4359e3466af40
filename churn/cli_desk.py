"""`churn desk` and `churn users add`: the retention desk's server and its users."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from churn.cli_common import ConfigOption, UserError, _config, app

users_app = typer.Typer(no_args_is_help=True, help="The retention desk's users.")
app.add_typer(users_app, name="users")
DEMO_USER = "demo-lead"


def _session_secrets(cfg) -> tuple[str, str]:
    """(the pseudonymisation key, the desk's session-signing key) from the secrets."""
    import os

    from serving.auth import SecretsError, load_secrets

    try:
        loaded = load_secrets(cfg.serving.secrets_file)
    except SecretsError as exc:
        raise UserError(str(exc)) from None
    session = os.environ.get("CHURN_DESK_SESSION_KEY") or (
        loaded.desk_session_key.get_secret_value() if loaded.desk_session_key else None
    )
    if not session or len(session) < 32:
        raise UserError(
            "desk_session_key: missing or shorter than 32 characters: set CHURN_DESK_SESSION_KEY or run "
            "`churn secrets-init`, which adds one to the secrets file"
        )
    return loaded.pseudonym_key.get_secret_value(), session


def _is_sample(cfg) -> bool:
    sample = (Path(__file__).resolve().parent.parent / "data" / "sample").resolve()
    source = cfg.data.source
    return isinstance(source, str) and Path(source).resolve() == sample


@app.command()
def desk(
    config: ConfigOption = None,
    port: Annotated[int | None, typer.Option(help="Port; desk.port from the config when omitted.")] = None,
    host: Annotated[str | None, typer.Option(help="Address; desk.host from the config when omitted.")] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="On the committed sample only: (re)create a demo lead user and print its login."
        ),
    ] = False,
) -> None:
    """Start the retention desk (the web pages the retention team works from) on the daily job's tables."""
    import uvicorn

    from serving.desk.app import create_app
    from serving.desk.users import UserStore, users_file

    cfg = _config(config)
    pseudonym_key, session_key = _session_secrets(cfg)
    address, number = host or cfg.desk.host, port or cfg.desk.port
    if demo:
        if not _is_sample(cfg):
            raise UserError(
                "--demo: only on the committed sample (data.source data/sample); add users with `churn users add`"
            )
        password = secrets.token_urlsafe(12)
        UserStore(users_file(cfg)).add(DEMO_USER, "lead", password)
        typer.echo(
            f"demo login          {DEMO_USER} / {password}   (sample only; a new password at every start)"
        )
    typer.echo(f"retention desk      http://{address}:{number}/desk/login")
    uvicorn.run(create_app(cfg, pseudonym_key, session_key), host=address, port=number, log_level="warning")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[str, typer.Option(help="branch, lead or audit.")],
    branch: Annotated[
        str | None, typer.Option(help="Branch staff: the branch id whose customers they see.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add (or replace) a desk user; the password is read from standard input, never from the command line."""
    from serving.desk.users import UserError as DeskUserError
    from serving.desk.users import UserStore, users_file

    cfg = _config(config)
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        new = UserStore(users_file(cfg)).add(name, role, password, branch)
    except DeskUserError as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"{'added' if new else 'replaced'} {role} user {name} in {users_file(cfg)}")
