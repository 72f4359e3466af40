"""The retention desk's users: a name, a role, a branch for branch staff, an Argon2 password hash.

Kept in a JSON file readable by the owner only (`desk.users_file`, written by `churn users add`);
a password is never stored, printed or logged, only its Argon2id hash (argon2-cffi's defaults).

Roles:
    branch   branch staff: the list and the customer pages of their own branch; record outcomes
    lead     the retention team lead: every branch, record outcomes, the overview
    audit    model risk and audit: the overview and the access audit log, no customer pages, no
             outcome entry
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("branch", "lead", "audit")
NAME = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# verified against when the name is unknown, so a wrong name takes as long as a wrong password
_DUMMY = _hasher.hash("not a password of anyone's")


def users_file(config) -> Path:
    """`desk.users_file`, or `<output_dir>/desk_users.json`."""
    return Path(config.desk.users_file) if config.desk.users_file else config.output_path / "desk_users.json"


class UserError(ValueError):
    """A user cannot be added as asked; the message names the field."""


@dataclass(frozen=True)
class DeskUser:
    name: str
    role: str
    branch_id: str | None = None

    @property
    def sees_customers(self) -> bool:
        return self.role in ("branch", "lead")

    @property
    def records_outcomes(self) -> bool:
        return self.role in ("branch", "lead")

    def may_see_branch(self, branch_id: object) -> bool:
        return self.role == "lead" or (self.role == "branch" and str(branch_id) == self.branch_id)


class UserStore:
    """Reads the users file on every login (a user added while the desk runs can log in at once)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _read(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text()).get("users", {})

    def _write(self, users: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"users": users}, handle, indent=2)
        os.replace(temporary, self.path)

    def add(self, name: str, role: str, password: str, branch_id: str | None = None) -> bool:
        """Add or replace a user; True when new. Raises UserError naming the field at fault."""
        if not NAME.match(name):
            raise UserError("name: 2-64 letters, digits or . _ @ -")
        if role not in ROLES:
            raise UserError(f"role: one of {', '.join(ROLES)}")
        if role == "branch" and not branch_id:
            raise UserError("branch: branch staff need --branch (the branch id whose customers they see)")
        if role != "branch" and branch_id:
            raise UserError("branch: only branch staff belong to one branch")
        if len(password) < MIN_PASSWORD:
            raise UserError(f"password: at least {MIN_PASSWORD} characters")
        users = self._read()
        new = name not in users
        users[name] = {"role": role, "branch_id": branch_id, "password_hash": _hasher.hash(password)}
        self._write(users)
        return new

    def verify(self, name: str, password: str) -> DeskUser | None:
        """The user when the password matches, else None (the same work either way)."""
        entry = self._read().get(name)
        try:
            _hasher.verify(entry["password_hash"] if entry else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        return DeskUser(name, entry["role"], entry.get("branch_id")) if entry else None

    def get(self, name: str) -> DeskUser | None:
        entry = self._read().get(name)
        return DeskUser(name, entry["role"], entry.get("branch_id")) if entry else None


__all__ = ["ROLES", "DeskUser", "UserError", "UserStore", "users_file"]
