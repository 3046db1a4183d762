"""Accounts for the review app: argon2id password hashes, roles, disabling. Changes are signed into the ledger."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import User

ROLES = ("admin", "investigator", "reviewer", "viewer")
CAN_ANNOTATE = ("admin", "investigator", "reviewer")
# may edit (supersede) someone else's annotation; a reviewer edits only their own
CAN_SUPERSEDE_ANY = ("admin", "investigator")
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class UserError(Exception):
    pass


def add_user(case: Case, name: str, role: str, password: str, actor: str) -> User:
    case.ensure_schema()
    if not NAME_RE.match(name):
        raise UserError("user names are 2–64 letters, digits, . _ @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords need at least {MIN_PASSWORD} characters")
    with case.sessions() as s:
        if s.scalars(select(User).where(User.name == name)).first():
            raise UserError(f"user {name!r} already exists")
        user = User(name=name, role=role, password_hash=_hasher.hash(password), disabled=False,
                    safe_viewing=True, created_at=datetime.now(UTC))
        s.add(user)
        s.log(actor, "user.add", None, {"user": name, "role": role})  # appended with the row's seal
        s.commit()
    return user


def set_disabled(case: Case, name: str, disabled: bool, actor: str) -> None:
    case.ensure_schema()
    with case.sessions() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise UserError(f"no user {name!r}")
        user.disabled = disabled
        from custodes.store.db import WebSession

        if disabled:  # end their sessions now
            for sess in s.scalars(select(WebSession).where(WebSession.user_id == user.id)):
                s.delete(sess)
        s.log(actor, "user.disable" if disabled else "user.enable", None, {"user": name})
        s.commit()


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_check() -> None:
    """Spend the time of a real check when the user does not exist: no timing oracle for names."""
    with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
        _hasher.verify(_DUMMY, "not the password")


_DUMMY = _hasher.hash("dummy password for timing")


def list_users(case: Case) -> list[dict[str, Any]]:
    """Every account of the case, by name: role, disabled, created (for ``custodes user list``)."""
    case.ensure_schema()
    with case.sessions() as s:
        return [{"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at.isoformat()}
                for u in s.scalars(select(User).order_by(User.name))]


# -- membership on a team server (web/team.py) ---------------------------------
# A case's account row is its membership: the role in this case, disabled when the person is removed. A row the
# team server made has no password of its own (this marker verifies no password): its owner logs in at the
# server, whose password is the one that counts.
TEAM_HASH = "team-server: no password of its own"


def has_own_password(user: User) -> bool:
    return user.password_hash != TEAM_HASH


def add_member(case: Case, name: str, role: str, actor: str) -> str:
    """Give ``name`` the ``role`` in this case: a new account row, or the existing one enabled and given the role.
    Each change is signed into the ledger as the per-case account commands sign theirs (user.add, user.enable,
    user.role). Returns what changed: "added", "enabled", "role" or "" (already so)."""
    case.ensure_schema()
    if not NAME_RE.match(name):
        raise UserError("user names are 2–64 letters, digits, . _ @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    with case.sessions() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            s.add(User(name=name, role=role, password_hash=TEAM_HASH, disabled=False, safe_viewing=True,
                       created_at=datetime.now(UTC)))
            s.log(actor, "user.add", None, {"user": name, "role": role, "via": "team server"})
            done = "added"
        elif user.disabled:
            previous, user.disabled, user.role = user.role, False, role
            s.log(actor, "user.enable", None, {"user": name, "role": role, "previous_role": previous,
                                               "via": "team server"})
            done = "enabled"
        elif user.role != role:
            previous, user.role = user.role, role
            s.log(actor, "user.role", None, {"user": name, "role": role, "previous_role": previous,
                                             "via": "team server"})
            done = "role"
        else:
            return ""
        s.commit()
    return done


def remove_member(case: Case, name: str, actor: str) -> None:
    """Take ``name`` out of this case: the account is disabled (its history stays, its sessions end at once)."""
    case.ensure_schema()
    with case.sessions() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None or user.disabled:
            raise UserError(f"{name} is not a member of this case")
    set_disabled(case, name, True, actor)
