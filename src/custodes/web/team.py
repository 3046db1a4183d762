"""The team server: one ``custodes serve`` for many cases, users at server level and a role per case.

Where things live:

- **Server state** (who may log in, their password hashes, server sessions, the login throttle and a log of
  server-level changes) is a small SQLite database in the server folder (``--server``, default
  ``$XDG_STATE_HOME/custodes/server``), never inside a case: a case stays a self-contained evidence store that
  can be exported, backed up or moved to another server.
- **Membership** is the case's own account row (``users`` in the case database): its role in that case, and
  ``disabled`` once the person is removed. Every change is signed into that case's ledger (``user.add``,
  ``user.enable``, ``user.role``, ``user.disable``; web/users.py), as ``custodes user`` signs its changes.

Existing per-case accounts keep working. On a team server a case's account named N is the membership of the
server user N only once it is *linked*: an admin added N to the case on the server, or N logged in at the
server with the password that case's account has. Two different people who happen to share a name in two
cases are therefore never merged. A name the server does not know yet is adopted at its first login: the
password of a case account with that name becomes the server password (its argon2id hash is copied).

Each case is served under ``/c/<slug>/`` (the case folder's name) by its own review app (web/app.py), which
keeps its own per-case session, bound to a signed ``login`` event in that case's ledger, opened on the first
request into the case. A request under ``/c/<slug>/`` from someone who is not an active, linked member of that
case gets the same 404 as an unknown case: nothing about the case, not even that it exists, is shown.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from custodes.store.case import Case
from custodes.store.db import User, UserPrefs
from custodes.web.i18n import LANGUAGES, gettext, lookup
from custodes.web.users import (
    MIN_PASSWORD,
    NAME_RE,
    ROLES,
    UserError,
    add_member,
    check_password,
    dummy_check,
    has_own_password,
    remove_member,
)

HERE = Path(__file__).parent
TEAM_COOKIE = "custodes_team"
PRELOGIN_CSRF = "custodes_login_csrf"
SECRET_FILE = "sessions.secret"
SESSION_IDLE = timedelta(hours=8)
THROTTLE_WINDOW_S = 15 * 60
THROTTLE_MAX_FAILURES = 5
THROTTLE_MAX_FAILURES_PER_ADDRESS = 25
SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCOPE_KEY = "custodes.team"  # (name, token) of the server session, set by the dispatcher for a case's app
NOT_FOUND = "There is no such page or item in this case: check the address, or go back to the queue."
MUST_CHANGE = ("Change your password first: an admin set it, so nothing else opens until you choose one of your "
               "own at /password.")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL
    DEFAULT 0, created_at TEXT NOT NULL, created_by TEXT NOT NULL, must_change INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS links (name TEXT NOT NULL, case_id TEXT NOT NULL, at TEXT NOT NULL, how TEXT NOT NULL,
    PRIMARY KEY (name, case_id));
CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, ip TEXT NOT NULL,
    ok INTEGER NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, details TEXT NOT NULL);
"""


class TeamError(Exception):
    pass


def default_dir() -> Path:
    """Where the team server keeps its own state unless ``--server`` says otherwise."""
    if os.environ.get("CUSTODES_SERVER"):
        return Path(os.environ["CUSTODES_SERVER"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "custodes" / "server"


def _iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TeamStore:
    """The server's own database (``server.db``) and session secret in the server folder (mode 0700)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(root, 0o700)
        except OSError as exc:
            raise TeamError(f"cannot use {root} as the server folder ({exc.strerror or exc}): choose another "
                            "with --server") from None
        if (root / "case.json").exists():
            raise TeamError(f"{root} is a case folder: the server keeps its state outside every case; choose "
                            "another folder with --server")
        self.db = root / "server.db"
        self._lock = threading.Lock()
        with self.connect() as c:
            c.executescript(SCHEMA)
            # a server folder from before passwords could be changed: every password there is the user's own
            if "must_change" not in {r[1] for r in c.execute("PRAGMA table_info(users)")}:
                # (another server starting at the same moment may have added it)
                with contextlib.suppress(sqlite3.OperationalError):
                    c.execute("ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0")
        self.secret = self._secret()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        finally:
            conn.close()

    def _secret(self) -> bytes:
        from custodes.web.sessions import secret_file

        path = self.root / SECRET_FILE
        raw = secret_file(path)
        if raw is None:
            raise TeamError(f"{path} is damaged (not 32 bytes): delete it and start the server again (everyone "
                            "will have to log in again)")
        return raw

    def digest(self, token: str) -> str:
        return hmac.new(self.secret, token.encode(), hashlib.sha256).hexdigest()

    def log(self, actor: str, action: str, details: dict[str, Any]) -> None:
        with self.connect() as c:
            c.execute("INSERT INTO events (at, actor, action, details) VALUES (?, ?, ?, ?)",
                      (_iso(), actor, action, json.dumps(details, ensure_ascii=False, sort_keys=True)))

    # -- users -------------------------------------------------------------------

    def user(self, name: str) -> tuple[str, bool] | None:
        """(password hash, disabled) of a server user."""
        with self.connect() as c:
            row = c.execute("SELECT password_hash, disabled FROM users WHERE name = ?", (name,)).fetchone()
        return (row[0], bool(row[1])) if row else None

    def users(self) -> list[str]:
        with self.connect() as c:
            return [r[0] for r in c.execute("SELECT name FROM users WHERE disabled = 0 ORDER BY name")]

    def created_by(self, actor: str) -> list[str]:
        """The server users ``actor`` added (an admin knows those names already)."""
        with self.connect() as c:
            return [r[0] for r in c.execute("SELECT name FROM users WHERE disabled = 0 AND created_by = ? "
                                            "AND name != ? ORDER BY name", (actor, actor))]

    def add_user(self, name: str, password_hash: str, actor: str, how: str, must_change: bool = False) -> None:
        """A new server user; ``must_change``: the password was set by someone else (an admin), and its owner
        must choose their own at the next login before anything else opens."""
        with self.connect() as c:
            try:
                c.execute("INSERT INTO users (name, password_hash, disabled, created_at, created_by, must_change) "
                          "VALUES (?, ?, 0, ?, ?, ?)", (name, password_hash, _iso(), actor, int(must_change)))
            except sqlite3.IntegrityError:
                raise UserError(f"There is already a user {name} on this server.") from None
        self.log(actor, "user.add", {"user": name, "how": how})

    def set_password(self, name: str, password_hash: str, must_change: bool, actor: str) -> None:
        """A new password hash (the owner's own, or an admin's reset that must be changed); logged without it."""
        with self.connect() as c:
            c.execute("UPDATE users SET password_hash = ?, must_change = ? WHERE name = ?",
                      (password_hash, int(must_change), name))
        self.log(actor, "user.password", {"user": name, "reset": must_change})

    def end_sessions(self, name: str, keep: str = "") -> int:
        """End every server session of ``name`` but the one with token ``keep``; how many ended."""
        with self.connect() as c:
            return c.execute("DELETE FROM sessions WHERE name = ? AND token_hash != ?",
                             (name, self.digest(keep) if keep else "")).rowcount

    # -- links (which case account is which server user's membership) -------------

    def links(self) -> set[tuple[str, str]]:
        with self.connect() as c:
            return {(r[0], r[1]) for r in c.execute("SELECT name, case_id FROM links")}

    def link(self, name: str, case_id: str, how: str, actor: str) -> None:
        with self.connect() as c:
            c.execute("INSERT OR IGNORE INTO links (name, case_id, at, how) VALUES (?, ?, ?, ?)",
                      (name, case_id, _iso(), how))
        self.log(actor, "link", {"user": name, "case_id": case_id, "how": how})

    # -- sessions and the throttle ------------------------------------------------------

    def reserve_attempt(self, name: str, ip: str) -> int | None:
        """Count the recent failures for this name or address and, below the limit, reserve this attempt as a
        failure until its password checks out (requests sent together cannot all pass the count)."""
        with self._lock, self.connect() as c:
            since = time.time() - THROTTLE_WINDOW_S
            # per name from any address, and per address at a higher ceiling (app.THROTTLE_MAX_FAILURES_PER_ADDRESS):
            # colleagues behind one office address are not locked out by one of them mistyping
            by_name = c.execute("SELECT count(*) FROM attempts WHERE ok = 0 AND at >= ? AND name = ?",
                                (since, name)).fetchone()[0]
            by_address = c.execute("SELECT count(*) FROM attempts WHERE ok = 0 AND at >= ? AND ip = ?",
                                   (since, ip)).fetchone()[0]
            if by_name >= THROTTLE_MAX_FAILURES or by_address >= THROTTLE_MAX_FAILURES_PER_ADDRESS:
                return None
            return int(c.execute("INSERT INTO attempts (name, ip, ok, at) VALUES (?, ?, 0, ?)",
                                 (name, ip, time.time())).lastrowid or 0)

    def attempt_ok(self, attempt: int) -> None:
        with self.connect() as c:
            c.execute("UPDATE attempts SET ok = 1 WHERE id = ?", (attempt,))

    def open_session(self, name: str) -> tuple[str, str]:
        """A new server session: (token for the cookie, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.connect() as c:
            c.execute("INSERT INTO sessions (token_hash, name, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
                      (self.digest(token), name, csrf, time.time(), time.time()))
        return token, csrf

    def session(self, token: str, lifetime: timedelta) -> tuple[str, str, bool] | None:
        """(name, csrf, must change the password) of a live session: not idle for 8 h, within its lifetime, its
        user not disabled."""
        digest = self.digest(token)
        with self.connect() as c:
            row = c.execute("SELECT s.name, s.csrf, s.created_at, s.last_seen, u.disabled, u.must_change "
                            "FROM sessions s JOIN users u ON u.name = s.name WHERE s.token_hash = ?",
                            (digest,)).fetchone()
            if row is None:
                return None
            name, csrf, created, seen, disabled, must_change = row
            t = time.time()
            if disabled or t - seen > SESSION_IDLE.total_seconds() or t - created > lifetime.total_seconds():
                return None
            if t - seen > 60:  # not a disk write per request
                c.execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (t, digest))
        return str(name), str(csrf), bool(must_change)

    def end_session(self, token: str) -> None:
        with self.connect() as c:
            c.execute("DELETE FROM sessions WHERE token_hash = ?", (self.digest(token),))


@dataclass
class Member:
    slug: str
    title: str
    role: str


class Team:
    """What the cases' review apps ask of the server: who is logged in, who is a member of which case."""

    def __init__(self, store: TeamStore, cases: dict[str, Case]) -> None:
        self.store = store
        self.cases = cases
        self._links = store.links()
        self._enders: list[Callable[[str], None]] = []

    def linked(self, name: str, case: Case) -> bool:
        return (name, case.id) in self._links

    def link(self, name: str, case: Case, how: str, actor: str) -> None:
        """Make the case's account ``name`` the membership of the server user ``name``: what grants access, so it
        is signed into the case's ledger (``user.link``) as well as logged by the server."""
        if (name, case.id) not in self._links:
            with case.sessions() as s:
                s.log(actor, "user.link", None, {"user": name, "how": how, "via": "team server"})
                s.commit()
            self.store.link(name, case.id, how, actor)
            self._links.add((name, case.id))

    def password_changed(self, name: str, actor: str, reset: bool) -> list[str]:
        """After a new password for ``name``: their sessions in every linked case end (a case's session of a
        server session that goes on is opened again, with a new signed login, at its next request), and the
        change is signed into the ledger of each case they are a member of (never the password or its hash).
        Returns the slugs of those cases."""
        signed = []
        for slug, case in self.cases.items():
            if not self.linked(name, case):
                continue
            from custodes.store.db import WebSession

            with case.sessions() as s:
                user = s.scalars(select(User).where(User.name == name)).first()
                if user is None:
                    continue
                for sess in s.scalars(select(WebSession).where(WebSession.user_id == user.id)):
                    s.delete(sess)
                if not user.disabled:
                    s.log(actor, "user.password", None, {"user": name, "by": actor, "via": "team server",
                                                         "reset": reset})
                    signed.append(slug)
                s.commit()
        return signed

    def role_in(self, name: str, case: Case) -> str | None:
        """The role of ``name`` in ``case``: an active account of the case, linked to the server user."""
        if not self.linked(name, case):
            return None
        with case.sessions() as s:
            row = s.execute(select(User.role, User.disabled).where(User.name == name)).first()
        return None if row is None or row.disabled else str(row.role)

    def memberships(self, name: str) -> list[Member]:
        out = []
        for slug, case in self.cases.items():
            role = self.role_in(name, case)
            if role is not None:
                out.append(Member(slug, str(case.meta.get("title") or slug), role))
        return out

    def admin_cases(self, name: str) -> list[str]:
        return [m.slug for m in self.memberships(name) if m.role == "admin"]

    def lang(self, name: str) -> str:
        """The interface language the user chose in a case (server pages follow it)."""
        for case in self.cases.values():
            if not self.linked(name, case):
                continue
            with case.sessions() as s:
                uid = s.scalar(select(User.id).where(User.name == name, User.disabled.is_(False)))
                prefs = s.get(UserPrefs, uid) if uid is not None else None
            if prefs is not None and prefs.data.get("lang") in LANGUAGES:
                return str(prefs.data["lang"])
        return "en"

    def on_end(self, ender: Callable[[str], None]) -> None:
        """A case's app ends its own session of a server session being logged out."""
        self._enders.append(ender)

    def end(self, token: str) -> None:
        for ender in self._enders:
            ender(token)
        self.store.end_session(token)


def slugs_for(case_dirs: list[Path]) -> dict[str, Path]:
    """Each case's address on the server: its folder's name (made unique with -2, -3 …)."""
    out: dict[str, Path] = {}
    for d in case_dirs:
        base = re.sub(r"[^A-Za-z0-9_.-]", "-", d.resolve().name).strip("-.") or "case"
        slug, n = base[:60], 2
        while slug in out:
            slug, n = f"{base[:56]}-{n}", n + 1
        out[slug] = d
    return out


def find_cases(paths: list[Path]) -> list[Path]:
    """The case folders named, a folder holding cases standing for every case in it (by name)."""
    out: list[Path] = []
    for p in paths:
        if (p / "case.json").is_file():
            out.append(p)
        elif p.is_dir():
            inside = sorted(x for x in p.iterdir() if (x / "case.json").is_file())
            if not inside:
                raise TeamError(f"{p} is neither a case nor a folder holding cases (no case.json in it or in "
                                "its folders): name the case folders")
            out.extend(inside)
        else:
            raise TeamError(f"{p} is not a folder: name a case folder or a folder holding cases")
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


class TeamViewer:
    """Someone logged in at the server, on a server page."""

    def __init__(self, name: str, csrf: str, lang: str, cases: list[Member], must_change: bool = False) -> None:
        self.name, self.csrf, self.lang, self.cases = name, csrf, lang, cases
        self.must_change = must_change


class MustChange(Exception):
    """A server page asked for by someone whose password an admin set: /password comes first."""


EXPIRED = "This form had expired (it was opened before you last logged in, or in another window): fill it in again."
THROTTLED = "Too many failed logins for this user name or address: wait 15 minutes and try again."
MAX_PASSWORD = 1024
# the password page's sentences, shared with a case served alone (web/password_view.py) so that both say, and
# translate, the same; ``{n}`` in one is the length limit it is about (password_sentence fills it in)
FILL_ALL = "Fill in all three fields: your current password, then the new one twice."
TOO_SHORT = "The new password has fewer than {n} characters: choose a longer one."
TOO_LONG = "The new password has more than {n} characters: choose a shorter one."
DIFFER = "The two new passwords differ: type the same new password twice."
SAME = "The new password is the one you have now: choose another."
WRONG_CURRENT = "The current password is wrong: type the one you logged in with."


def new_password_problem(current: str, new: str, again: str) -> str:
    """What is wrong with a change of one's own password as typed (the sentence, in English), or "". The current
    password is checked after this, by the caller, under the login's throttle."""
    if not current or not new or not again:
        return FILL_ALL
    if len(new) < MIN_PASSWORD:
        return TOO_SHORT
    if len(new) > MAX_PASSWORD:
        return TOO_LONG
    if new != again:
        return DIFFER
    if new == current:
        return SAME
    return ""


def password_sentence(lang: str, sentence: str) -> str:
    """A sentence of the password page in ``lang``, its length limit filled in."""
    return lookup(lang, sentence).format(n=MAX_PASSWORD if sentence == TOO_LONG else MIN_PASSWORD)


def create_team_app(cases: dict[str, Case], store: TeamStore, session_lifetime: timedelta = timedelta(hours=12),
                    secure_cookies: bool = False) -> Any:
    """The server: its own pages (login, the cases, users and membership, the password) and each case's review
    app under ``/c/<slug>/``, behind a check that the person is a member of that case.

    Every form of the server answers a missing or wrong field with its own page and one sentence, keeping what
    was typed (never a password); FastAPI's 422 JSON is never shown."""
    from custodes.web.app import create_app
    from custodes.web.users import _hasher

    team = Team(store, cases)
    apps = {slug: create_app(case, session_lifetime=session_lifetime, secure_cookies=secure_cookies, team=team)
            for slug, case in cases.items()}
    cookie_flags: dict[str, Any] = {"httponly": True, "samesite": "strict", "secure": secure_cookies}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        for a in apps.values():
            a.state.views.close()

    server = FastAPI(title="Custodes team server", docs_url=None, redoc_url=None, openapi_url=None,
                     lifespan=lifespan)
    server.state.team = team
    server.state.case_apps = apps
    templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[
        lambda request: {"base": "", "team_cases": None}])
    templates.env.globals["_"] = gettext
    templates.env.globals["languages"] = LANGUAGES
    server.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @server.middleware("http")
    async def headers(request: Request, call_next: Any) -> Response:
        from custodes.web.app import SECURITY_HEADERS

        resp: Response = await call_next(request)
        resp.headers.update(SECURITY_HEADERS)
        return resp

    def viewer(request: Request) -> TeamViewer | None:
        token = request.cookies.get(TEAM_COOKIE, "")
        if not token or len(token) > 128:
            return None
        found = store.session(token, session_lifetime)
        if found is None:
            return None
        name, csrf, must_change = found
        return TeamViewer(name, csrf, team.lang(name), team.memberships(name), must_change)

    def require(request: Request, changing: bool = False) -> TeamViewer:
        """The person logged in; one whose password an admin set reaches only /password (``changing``) and
        logging out until they have chosen their own."""
        tv = viewer(request)
        if tv is None:
            raise HTTPException(status_code=401, detail="log in first")
        if tv.must_change and not changing:
            raise MustChange()
        return tv

    def csrf_ok(tv: TeamViewer, token: str) -> bool:
        return bool(token) and secrets.compare_digest(token.encode(), tv.csrf.encode())

    def page(request: Request, name: str, tv: TeamViewer | None, status: int = 200, **ctx: Any) -> Response:
        return templates.TemplateResponse(request, name, {"v": None, "tv": tv, "title": "team server", **ctx},
                                          status_code=status)

    def wants_html(request: Request) -> bool:
        form = request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded",
                                                                   "multipart/form-data"))
        return form or "text/html" in request.headers.get("accept", "")

    def error(request: Request, status: int, sentence: str, headers: Any = None) -> Response:
        if wants_html(request):
            heading = {404: "Not found", 403: "Not allowed", 429: "Too many tries"}.get(status, "That did not work")
            resp = page(request, "error.html", viewer(request), status, heading=heading, sentence=sentence)
            if headers:
                resp.headers.update(headers)
            return resp
        return JSONResponse({"detail": sentence}, status_code=status, headers=headers)

    @server.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 401:
            return RedirectResponse("/login", status_code=303)
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = NOT_FOUND
        if exc.status_code == 405:
            detail = "This page does not take that kind of request: open it from the server's pages."
        return await anyio.to_thread.run_sync(lambda: error(request, exc.status_code, detail, exc.headers))

    @server.exception_handler(MustChange)
    async def must_change_first(request: Request, exc: MustChange) -> Response:
        return RedirectResponse("/password", status_code=303)

    @server.exception_handler(RequestValidationError)
    async def not_understood(request: Request, exc: RequestValidationError) -> Response:
        # every form field has a default and is checked by its route; this is for anything else
        return await anyio.to_thread.run_sync(lambda: error(
            request, 422, "That request was not complete or not understood: open the page again and use its form."))

    # -- login -----------------------------------------------------------------------

    def login_form(request: Request, error: str = "", username: str = "", status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
        token = secrets.token_urlsafe(32)
        resp = page(request, "login.html", None, status, csrf=token, error=error, username=username[:64])
        if headers:
            resp.headers.update(headers)
        resp.set_cookie(PRELOGIN_CSRF, token, max_age=3600, **cookie_flags)
        return resp

    @server.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        return login_form(request)

    def adopt(name: str, password: str) -> bool:
        """No server user of this name yet: a case account with this name and password becomes one."""
        for case in cases.values():
            with case.sessions() as s:
                row = s.scalars(select(User).where(User.name == name, User.disabled.is_(False))).first()
            if row is not None and has_own_password(row) and check_password(row, password):
                try:
                    store.add_user(name, row.password_hash, name, f"adopted from case {case.id}")
                except UserError:
                    # logged in at the same moment as another request that adopted this name: it is this
                    # person only if the password stored by that request is theirs too (two people who share
                    # a name in two cases must never be merged)
                    stored = store.user(name)
                    return stored is not None and not stored[1] and check_password(
                        User(password_hash=stored[0]), password)
                return True
        dummy_check()
        return False

    def case_account_of_its_own(name: str) -> bool:
        """Some served case has an account of this name with its own password: that name belongs to
        whoever knows that password, and an admin must not create a server user who would take it over."""
        for case in cases.values():
            with case.sessions() as s:
                row = s.scalars(select(User).where(User.name == name)).first()
            if row is not None and has_own_password(row):
                return True
        return False

    def last_admin(target: Case, name: str) -> bool:
        if team.role_in(name, target) != "admin":
            return False
        with target.sessions() as s:
            admins = [u.name for u in s.scalars(select(User).where(User.role == "admin", User.disabled.is_(False)))
                      if team.linked(u.name, target)]
        return admins == [name]

    def link_own_accounts(name: str, password: str) -> None:
        """Case accounts of this name whose own password is this one are this person's memberships."""
        for case in cases.values():
            if team.linked(name, case):
                continue
            with case.sessions() as s:
                row = s.scalars(select(User).where(User.name == name)).first()
            if row is not None and has_own_password(row) and check_password(row, password):
                team.link(name, case, "same password", name)

    @server.post("/login")
    def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
              csrf: Annotated[str, Form()] = "") -> Response:
        name = username[:64]
        cookie = request.cookies.get(PRELOGIN_CSRF, "")
        if not cookie or not csrf or not secrets.compare_digest(cookie.encode(), csrf.encode()):
            return login_form(request, "This login form had expired: log in again.", name, 403)
        if not name.strip() or not password:
            return login_form(request, "Type your user name and your password, then log in.", name, 422)
        ip = request.client.host if request.client else "?"
        attempt = store.reserve_attempt(name, ip)
        if attempt is None:
            return login_form(request, THROTTLED, name, 429, {"Retry-After": str(THROTTLE_WINDOW_S)})
        known = store.user(name) if NAME_RE.match(name) else None
        if known is None:
            ok = NAME_RE.match(name) is not None and adopt(name, password)
        else:
            ok = not known[1] and check_password(User(password_hash=known[0]), password)
        if not ok:
            return login_form(request, "Wrong user name or password.", name, 401)
        store.attempt_ok(attempt)
        link_own_accounts(name, password)
        token, _ = store.open_session(name)
        store.log(name, "login", {"ip": ip})
        opened = store.session(token, session_lifetime)
        resp = RedirectResponse("/password" if opened and opened[2] else "/", status_code=303)
        resp.set_cookie(TEAM_COOKIE, token, max_age=int(session_lifetime.total_seconds()), **cookie_flags)
        resp.delete_cookie(PRELOGIN_CSRF, **cookie_flags)
        return resp

    def logout_response(request: Request) -> Response:
        token = request.cookies.get(TEAM_COOKIE, "")
        if token:
            team.end(token)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(TEAM_COOKIE, **cookie_flags)
        return resp

    server.state.logout_response = logout_response

    @server.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        tv = require(request, changing=True)
        if not csrf_ok(tv, csrf):  # a form: its answer is a page, whatever the request accepts
            return page(request, "error.html", tv, 403, heading="Not allowed",
                        sentence="This form had expired: reload the page and log out again.")
        return logout_response(request)

    # -- the password -------------------------------------------------------------------

    def password_form(request: Request, tv: TeamViewer, error: str = "", done: bool = False,
                      status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """The page, its sentence in the person's language (``{n}`` in it: the length limit it is about)."""
        said = password_sentence(tv.lang, error) if error else ""
        resp = page(request, "team_password.html", tv, status, error=said, done=done, min_password=MIN_PASSWORD)
        if headers:
            resp.headers.update(headers)
        return resp

    @server.get("/password", response_class=HTMLResponse)
    def password_page(request: Request, done: str = "") -> Response:
        """Change your own password (current one, new one twice); the only page open to someone whose
        password an admin set, until they have."""
        tv = require(request, changing=True)
        return password_form(request, tv, done=done == "1" and not tv.must_change)

    @server.post("/password")
    def change_password(request: Request, csrf: Annotated[str, Form()] = "", current: Annotated[str, Form()] = "",
                        new: Annotated[str, Form()] = "", again: Annotated[str, Form()] = "") -> Response:
        tv = require(request, changing=True)
        if not csrf_ok(tv, csrf):
            return password_form(request, tv, EXPIRED, status=403)
        problem = new_password_problem(current, new, again)
        if problem:
            return password_form(request, tv, problem, status=422)
        ip = request.client.host if request.client else "?"
        attempt = store.reserve_attempt(tv.name, ip)  # the login's throttle: no more guesses here than there
        if attempt is None:
            return password_form(request, tv, THROTTLED, status=429, headers={"Retry-After": str(THROTTLE_WINDOW_S)})
        known = store.user(tv.name)
        if known is None or not check_password(User(password_hash=known[0]), current):
            return password_form(request, tv, WRONG_CURRENT, status=403)
        store.attempt_ok(attempt)
        store.set_password(tv.name, _hasher.hash(new), False, tv.name)
        store.end_sessions(tv.name, keep=request.cookies.get(TEAM_COOKIE, ""))
        team.password_changed(tv.name, tv.name, reset=False)
        return RedirectResponse("/password?done=1", status_code=303)

    # -- the cases ------------------------------------------------------------------------

    @server.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        """The cases this person is a member of; straight into the case when there is one."""
        tv = require(request)
        if len(tv.cases) == 1 and not team.admin_cases(tv.name):
            return RedirectResponse(f"/c/{tv.cases[0].slug}/", status_code=303)
        return page(request, "team_home.html", tv)

    def admin_of(tv: TeamViewer, slug: str) -> Case:
        """The case, if ``tv`` is its admin; for anyone else the 404 of a case that is not there."""
        if slug not in team.admin_cases(tv.name):
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        return cases[slug]

    def admin_view(request: Request, tv: TeamViewer, done: str = "", error: str = "",
                   typed: dict[str, str] | None = None, status: int = 200) -> Response:
        """Users and membership of the cases ``tv`` administers. The names offered are the members of those
        cases and the users ``tv`` added, never every user of the server; another name can be typed."""
        mine = team.admin_cases(tv.name)
        if not mine:
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        rows, known = [], set(store.created_by(tv.name))
        for slug in mine:
            case = cases[slug]
            with case.sessions() as s:
                members = [{"name": u.name, "role": u.role} for u in s.scalars(
                    select(User).where(User.disabled.is_(False)).order_by(User.name)) if team.linked(u.name, case)]
            known.update(m["name"] for m in members)
            rows.append({"slug": slug, "title": case.meta.get("title") or slug, "members": members})
        return page(request, "team_admin.html", tv, status, cases=rows, users=sorted(known), roles=ROLES,
                    done=done[:200], error=error[:300], typed=typed or {}, min_password=MIN_PASSWORD)

    def done_mac(tv: TeamViewer, done: str) -> str:
        return store.digest(f"admin-done\0{tv.csrf}\0{done}")[:32]

    @server.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, done: str = "", mac: str = "") -> Response:
        """Users and membership, for the cases this person is an admin of. The sentence of what was done comes
        from this server's own redirect only (a link someone sends cannot put words on the page)."""
        tv = require(request)
        said = done if done and secrets.compare_digest(mac.encode(), done_mac(tv, done).encode()) else ""
        return admin_view(request, tv, done=said)

    def back(tv: TeamViewer, done: str) -> Response:
        from urllib.parse import urlencode

        return RedirectResponse("/admin?" + urlencode({"done": done, "mac": done_mac(tv, done)}), status_code=303)

    @server.post("/admin/users")
    def admin_add_user(request: Request, csrf: Annotated[str, Form()] = "", name: Annotated[str, Form()] = "",
                       password: Annotated[str, Form()] = "") -> Response:
        tv = require(request)
        if not team.admin_cases(tv.name):
            raise HTTPException(status_code=404, detail=NOT_FOUND)
        typed = {"form": "add-user", "name": name[:64]}

        def refuse(sentence: str, status: int = 422) -> Response:
            return admin_view(request, tv, error=sentence, typed=typed, status=status)

        if not csrf_ok(tv, csrf):
            return refuse(EXPIRED, 403)
        name = name.strip()
        if not name:
            return refuse("Type a name for the new user.")
        if not NAME_RE.match(name):
            return refuse("A user name is 2–64 letters, digits, . _ @ or -: choose another.")
        if len(password) < MIN_PASSWORD:
            return refuse(f"The password has fewer than {MIN_PASSWORD} characters: choose a longer one.")
        if len(password) > MAX_PASSWORD:
            return refuse(f"The password has more than {MAX_PASSWORD} characters: choose a shorter one.")
        if case_account_of_its_own(name):  # the same sentence as for a server user: names are not confirmed
            return refuse(f"There is already a user {name} on this server. Add them to a case below instead.", 409)
        try:
            # the admin knows this password: its owner must choose their own at the first login
            store.add_user(name, _hasher.hash(password), tv.name, "added by an admin", must_change=True)
        except UserError as exc:
            return refuse(f"{exc} Add them to a case below instead.", 409)
        return back(tv, f"Added user {name}. Now add them to a case; at their first login they choose their own "
                    "password.")

    @server.post("/admin/members")
    def admin_add_member(request: Request, csrf: Annotated[str, Form()] = "", case: Annotated[str, Form()] = "",
                         name: Annotated[str, Form()] = "", role: Annotated[str, Form()] = "") -> Response:
        tv = require(request)
        typed = {"form": "add-member", "case": case[:64], "name": name[:64], "role": role[:20]}

        def refuse(sentence: str, status: int = 422) -> Response:
            return admin_view(request, tv, error=sentence, typed=typed, status=status)

        if not csrf_ok(tv, csrf):
            return refuse(EXPIRED, 403)
        target = admin_of(tv, case)
        name = name.strip()
        if not name:
            return refuse("Type the name of the user to add to this case.")
        if store.user(name) is None:
            return refuse(f"There is no user {name[:64]} on this server: add them first (Add a user).")
        if role not in ROLES:
            return refuse(f"The role is one of {', '.join(ROLES)}: choose one.")
        if not team.linked(name, target):
            with target.sessions() as s:
                row = s.scalars(select(User).where(User.name == name)).first()
            if row is not None and has_own_password(row):
                # that account is whoever knows its password, not necessarily the server user of this name
                return refuse(f"{name} has an account of their own in this case: they join by logging in "
                              "at /login with that account's password.", 409)
        if role != "admin" and last_admin(target, name):
            return refuse("This is the last admin of this case on the server: make someone else admin first.", 409)
        try:
            team.link(name, target, "added by an admin", tv.name)
            changed = add_member(target, name, role, tv.name)
        except UserError as exc:
            return refuse(str(exc))
        title = target.meta.get("title") or case
        return back(tv, f"{name} is now {role} in {title}." if changed else f"{name} was already {role} in {title}.")

    @server.post("/admin/members/remove")
    def admin_remove_member(request: Request, csrf: Annotated[str, Form()] = "", case: Annotated[str, Form()] = "",
                            name: Annotated[str, Form()] = "") -> Response:
        tv = require(request)

        def refuse(sentence: str, status: int = 422) -> Response:
            return admin_view(request, tv, error=sentence, status=status)

        if not csrf_ok(tv, csrf):
            return refuse(EXPIRED, 403)
        target = admin_of(tv, case)
        if not name:
            return refuse("Choose the member to remove from their row in the table.")
        if last_admin(target, name):
            return refuse("This is the last admin of this case on the server: make someone else admin first.", 409)
        try:
            remove_member(target, name, tv.name)
        except UserError as exc:
            return refuse(str(exc))
        return back(tv, f"{name} is no longer a member of {target.meta.get('title') or case}.")

    @server.post("/admin/password")
    def admin_reset_password(request: Request, csrf: Annotated[str, Form()] = "", case: Annotated[str, Form()] = "",
                             name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "") -> Response:
        """An admin sets a new password for a member of a case they administer: every session of that person
        ends, and at their next login they must choose their own. Signed into each of their cases' ledgers."""
        tv = require(request)
        typed = {"form": "reset", "case": case[:64], "name": name[:64]}

        def refuse(sentence: str, status: int = 422) -> Response:
            return admin_view(request, tv, error=sentence, typed=typed, status=status)

        if not csrf_ok(tv, csrf):
            return refuse(EXPIRED, 403)
        target = admin_of(tv, case)
        title = target.meta.get("title") or case
        name = name.strip()
        if name == tv.name:
            return refuse("To change your own password use Change password: it asks for your current one.")
        if not name or store.user(name) is None or team.role_in(name, target) is None:
            return refuse(f"{name[:64] or 'Nobody'} is not a member of {title}: you can reset the password of "
                          "members of the cases you administer only.")
        mine = set(team.admin_cases(tv.name))
        if any(m.slug not in mine for m in team.memberships(name)):
            # with a password they set, this admin could act as that person in a case that is not theirs
            return refuse(f"{name} is also a member of a case you do not administer: only an admin of every case "
                          "they are a member of can reset their password.", 403)
        if len(password) < MIN_PASSWORD:
            return refuse(f"The password has fewer than {MIN_PASSWORD} characters: choose a longer one.")
        if len(password) > MAX_PASSWORD:
            return refuse(f"The password has more than {MAX_PASSWORD} characters: choose a shorter one.")
        store.set_password(name, _hasher.hash(password), True, tv.name)
        store.end_sessions(name)
        team.password_changed(name, tv.name, reset=True)
        return back(tv, f"The password of {name} is reset and their sessions have ended. Give them the new password "
                    "by a safe channel: at their next login they must choose their own.")
    return TeamDispatch(server, team, apps, session_lifetime)


class TeamDispatch:
    """The ASGI app: ``/c/<slug>/…`` to that case's review app for its members, everything else to the server.
    A non-member and an unknown case get the very same 404. Every answer, its own refusals and any error of
    the apps behind it included, carries the security headers (``SECURITY_HEADERS``)."""

    def __init__(self, server: FastAPI, team: Team, apps: dict[str, Any], lifetime: timedelta) -> None:
        from custodes.web.app import SECURITY_HEADERS

        self.server, self.team, self.apps, self.lifetime = server, team, apps, lifetime
        self.state = server.state
        self._headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    @property
    def routes(self) -> Any:
        return self.server.routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.server(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                missing = [(k, v) for k, v in self._headers if k not in have]
                if missing:
                    message = {**message, "headers": [*message.get("headers", []), *missing]}
            await send(message)

        path = scope.get("path", "")
        if not path.startswith("/c/"):
            await self.server(scope, receive, send_with_headers)
            return
        slug, _, rest = path[3:].partition("/")
        request = Request(scope)
        token = request.cookies.get(TEAM_COOKIE, "")
        state, who = await anyio.to_thread.run_sync(self._who, token, slug)
        api = rest.startswith(("api/", "media/", "thumbs/", "reports/", "raw/"))
        if state == "out":
            resp: Response = JSONResponse({"detail": "log in first"}, status_code=401) if api else \
                RedirectResponse("/login", status_code=303)
        elif state == "must change":  # the same for every case, a member's or not: nothing said about any
            resp = JSONResponse({"detail": MUST_CHANGE}, status_code=403) if api else \
                RedirectResponse("/password", status_code=303)
        elif who is None:
            resp = self._not_found(request)
        else:
            # as Starlette mounts an app: the whole path, and the prefix the app is served under as root_path
            sub = dict(scope, root_path=scope.get("root_path", "") + f"/c/{slug}")
            sub[SCOPE_KEY] = (who, token)
            await self.apps[slug](sub, receive, send_with_headers)
            return
        await resp(scope, receive, send_with_headers)

    def _who(self, token: str, slug: str) -> tuple[str, str | None]:
        """("out", None) logged out; ("must change", None) to /password first; ("in", the name if a member of
        this case, else None)."""
        if not token or len(token) > 128:
            return "out", None
        found = self.team.store.session(token, self.lifetime)
        if found is None:
            return "out", None
        name, _, must_change = found
        if must_change:
            return "must change", None
        case = self.team.cases.get(slug) if SLUG_RE.match(slug) else None
        if case is None or self.team.role_in(name, case) is None:
            return "in", None
        return "in", name

    def _not_found(self, request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            import html

            return HTMLResponse(
                "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Not found — Custodes</title>"
                "<link rel=\"stylesheet\" href=\"/static/app.css\"><main><h1>Not found</h1>"
                f"<p role=\"alert\" id=\"error-sentence\">{html.escape(NOT_FOUND)}</p>"
                "<p><a href=\"/\">Your cases</a></p></main></html>", status_code=404)
        return JSONResponse({"detail": NOT_FOUND}, status_code=404)
