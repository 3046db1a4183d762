"""``custodes serve``: the reviewers' web workspace for one case.

FastAPI with server-rendered Jinja2 pages and one small script. Security in
brief: argon2id passwords; a fresh random session token at every login (no
fixation), stored only as its HMAC under a per-case secret and tied to its signed
login event (web/sessions.py), HttpOnly + SameSite=Strict (+ Secure behind TLS),
ending after 8 h idle or its absolute lifetime; a CSRF token per session checked
on every POST (a double-submit cookie before login); login throttling per user
name and per address, each attempt reserved before its password is checked;
objects are addressed only by a validated SHA-256 that must belong to this case;
strict security headers.
Every page view of evidence, every playback and every annotation is signed
into the case ledger under the user's name.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from custodes.analyze import edits, scene_cuts
from custodes.store.case import Case
from custodes.store.db import (
    Annotation,
    Derivative,
    EvidenceObject,
    LoginAttempt,
    MediaProbe,
    Provenance,
    Recording,
    Review,
    Segment,
    Signal,
    TranscriptSegment,
    User,
    UserPrefs,
    WebSession,
)
from custodes.timeline import cameras as cam_names
from custodes.web import exposure, timeline_view, waveform_view
from custodes.web import review as rv
from custodes.web.audit import ViewAudit
from custodes.web.failures import failure_response
from custodes.web.i18n import LANGUAGES, gettext, lookup
from custodes.web.sessions import SessionKeys
from custodes.web.users import CAN_ANNOTATE, CAN_SUPERSEDE_ANY, check_password, dummy_check
from custodes.web.validation import plain_sentence

HERE = Path(__file__).parent
SESSION_COOKIE = "custodes_session"
PRELOGIN_CSRF = "custodes_login_csrf"
SESSION_IDLE = timedelta(hours=8)
SESSION_LIFETIME = timedelta(hours=12)  # from the signed login, however active the session
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_MAX_FAILURES = 5  # per user name, from any address
# per address, whatever the names: a team behind one office address (or on one laptop) must not be locked out by
# one colleague's typing, while one address spraying guesses over many names still is
THROTTLE_MAX_FAILURES_PER_ADDRESS = 25
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
TAXONOMY = ["beating", "sexual violence", "stress position", "humiliation", "threats", "medical neglect",
            "other", "reviewed: nothing of concern"]
LABEL_KEYS = {str(i + 1): label for i, label in enumerate(TAXONOMY[:7])}  # keys 1-7 choose a label
SAFE_KEYS = ("blur", "grey", "mute")
CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$")
TEXT_PREVIEW = 200_000  # bytes of a text item shown on its page
IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif",
               "webp": "image/webp", "bmp": "image/bmp"}
PERSON_ROLES = ["victim", "perpetrator", "witness"]
PAGE_SIZE = 100
MAX_ROW_ID = 2**31 - 1  # an INTEGER column on PostgreSQL; larger numbers name no row
MAX_DAY_S = 24 * 3600.0
_login_locks: dict[Path, threading.Lock] = {}


def now() -> datetime:
    return datetime.now(UTC)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def route_path(request: Request) -> str:
    """The path within this app: on a team server without its ``/c/<slug>`` prefix (the scope's root_path)."""
    path, root = request.url.path, str(request.scope.get("root_path", ""))
    return path[len(root):] if root and path.startswith(root + "/") else path


def _login_lock(case: Case) -> threading.Lock:
    """One lock per case and process: the throttle's count and the reservation of an attempt happen under it
    (``custodes serve`` is one process)."""
    return _login_locks.setdefault(case.root, threading.Lock())


def reserve_login_attempt(case: Case, name: str, ip: str) -> int | None:
    """Reserve one attempt at a password for ``name`` from ``ip`` (/login, /password): counted and written at
    once under the login's lock, so requests sent together cannot all pass the count before any is written; a
    failure until the caller marks it good. None when the throttle is full."""
    with _login_lock(case), case.sessions() as s:
        recent = (LoginAttempt.ok.is_(False), LoginAttempt.at >= now() - THROTTLE_WINDOW)
        by_name = s.scalar(select(func.count()).select_from(LoginAttempt).where(
            *recent, LoginAttempt.name == name)) or 0
        by_address = s.scalar(select(func.count()).select_from(LoginAttempt).where(
            *recent, LoginAttempt.ip == ip)) or 0
        if by_name >= THROTTLE_MAX_FAILURES or by_address >= THROTTLE_MAX_FAILURES_PER_ADDRESS:
            return None
        attempt = LoginAttempt(name=name, ip=ip, ok=False, at=now())
        s.add(attempt)
        s.commit()
        return int(attempt.id)


class FormError(Exception):
    """Bad input in the annotation form, as (status, sentence): a browser gets the form again, as typed."""


class Viewer:
    def __init__(self, user: User, session: WebSession, prefs: dict[str, Any] | None = None) -> None:
        self.user = user
        self.session = session
        stored = prefs or {}
        # blur, grey and mute each on its own; a user without settings gets what their safe-viewing flag says
        self.safe = {k: bool(stored.get(k, user.safe_viewing)) for k in SAFE_KEYS}
        self.lang: str = str(stored["lang"]) if stored.get("lang") in LANGUAGES else "en"

    @property
    def safe_classes(self) -> str:
        return " ".join(f"safe-{k}" for k, on in self.safe.items() if on)

    @property
    def name(self) -> str:
        return self.user.name


# every answer of the review app and of the team server: nothing from elsewhere, no framing, no caching
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
                                "script-src 'self'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(case: Case, session_lifetime: timedelta = SESSION_LIFETIME, secure_cookies: bool = False,
               team: Any = None) -> FastAPI:
    """``secure_cookies``: for a deployment behind TLS (the browser then sends the cookies only over HTTPS).
    ``team``: the team server (web/team.py) this app serves the case for, under ``/c/<slug>/``: people log in
    at the server, and this app opens its own session for a member on their first request into the case."""
    if case.low_space and case.engine.dialect.name == "sqlite":
        # on a full disk the case database is opened for one process at a time (store/db.py): a server would
        # lock every other command out for as long as it runs
        from custodes.store.case import CaseError

        raise CaseError(f"the disk holding {case.root} is full: free some space, then start the review app")
    case.ensure_schema()
    views = ViewAudit(case.ledger)
    tokens = SessionKeys(case)
    cookie_flags: dict[str, Any] = {"httponly": True, "samesite": "strict", "secure": secure_cookies}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        views.close()  # the views still waiting go to the ledger when the server stops

    # no Swagger page: its script comes from a CDN, which the CSP blocks and an offline server cannot reach;
    # /api/docs lists the endpoints from the OpenAPI document, server-rendered
    app = FastAPI(title=f"Custodes — {case.meta.get('title', '')}", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.views = views
    team_seqs: dict[str, int] = {}  # on a team server: case session (its HMAC) -> seq of its signed login
    team_lock = threading.Lock()

    def page_context(request: Request) -> dict[str, Any]:
        """Every page: where this case is served (``base``) and, on a team server, the viewer's cases."""
        name = getattr(request.state, "viewer_name", None)
        cases = team.memberships(name) if team is not None and name else None
        return {"base": base(request), "team_cases": cases,
                "team_slug": request.scope.get("root_path", "").rsplit("/", 1)[-1] if team is not None else "",
                "team_admin": bool(cases and any(c.role == "admin" for c in cases))}

    templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[page_context])
    templates.env.globals["_"] = gettext
    templates.env.globals["languages"] = LANGUAGES
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        try:
            resp: Response = await call_next(request)
        except Exception as exc:  # a full disk, a database gone: one sentence, never a traceback page
            resp = failure_response(request, exc)
        resp.headers.update(SECURITY_HEADERS)
        return resp

    def base(request: Request) -> str:
        """Where this app is served: "" alone, ``/c/<slug>`` on a team server."""
        return str(request.scope.get("root_path", ""))

    def audit(actor: str, action: str, subject: str | None, details: dict[str, Any]) -> None:
        case.ledger.append(actor, action, subject, details)

    def open_team_session(request: Request, name: str, digest: str) -> int | None:
        """A member's first request into this case in their server session: the signed login event, then the
        case's session row (as /login does in a case served alone)."""
        with team_lock:
            if digest in team_seqs:
                return team_seqs[digest]
            with case.sessions() as s:
                user = s.scalars(select(User).where(User.name == name)).first()
                if user is None or user.disabled or not team.linked(name, case):
                    return None
                uid = user.id
            ip = request.client.host if request.client else "?"
            signed = case.ledger.append(name, "login", None, {"ip": ip, "session": tokens.fingerprint(digest),
                                                              "via": "team server"})
            with case.sessions() as s:
                old = s.get(WebSession, digest)
                if old is not None:  # removed and added again: a fresh row for the new login
                    s.delete(old)
                    s.flush()
                s.add(WebSession(token_hash=digest, user_id=uid, csrf=secrets.token_urlsafe(32),
                                 created_at=now(), last_seen=now(), played=[]))
                s.commit()
            tokens.remember(signed, digest)
            team_seqs[digest] = signed["seq"]
            return int(signed["seq"])

    def end_team_session(token: str) -> None:
        """The server session is logged out: so is this case's session of it."""
        digest = tokens.digest(token)
        if team_seqs.pop(digest, None) is None:
            return
        with case.sessions() as s:
            sess = s.get(WebSession, digest)
            user = s.get(User, sess.user_id) if sess is not None else None
            if sess is not None:
                s.delete(sess)
                s.commit()
        if user is not None:
            audit(user.name, "logout", None, {"via": "team server"})

    if team is not None:
        team.on_end(end_team_session)

    def team_logout(request: Request) -> Response:
        from custodes.web.team import TEAM_COOKIE

        who = request.scope.get("custodes.team")
        if who:
            team.end(who[1])
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(TEAM_COOKIE, **cookie_flags)
        return resp

    def session_key(request: Request) -> tuple[int, str] | None:
        if team is None:
            return SessionKeys.parse(request.cookies.get(SESSION_COOKIE, ""))
        who = request.scope.get("custodes.team")  # set by the server for a member of this case only
        if not who:
            return None
        name, token = who
        digest = tokens.digest(token)
        with case.sessions() as s:
            live = s.get(WebSession, digest) is not None
        if not live:
            team_seqs.pop(digest, None)
        seq = team_seqs.get(digest) if live else None
        if seq is None:
            seq = open_team_session(request, name, digest)
        return None if seq is None else (seq, token)

    def current(request: Request) -> Viewer | None:
        cookie = session_key(request)
        if cookie is None:
            return None
        seq, token = cookie
        digest = tokens.digest(token)
        with case.sessions() as s:
            sess = s.get(WebSession, digest)
            if sess is None or now() - _aware(sess.last_seen) > SESSION_IDLE:
                return None
            user = s.get(User, sess.user_id)
            if user is None or user.disabled:
                return None
            prefs = s.get(UserPrefs, user.id)
            # the signed login event must name this user and this session; its time bounds the lifetime
            signed = tokens.login(seq, digest)
            if signed is None or signed.actor != user.name or now() - signed.at > session_lifetime:
                return None
            if now() - _aware(sess.last_seen) > timedelta(minutes=1):  # not a disk write per request
                sess.last_seen = now()
                s.commit()
            request.state.viewer_name = user.name
            return Viewer(user, sess, prefs.data if prefs else None)

    def require(request: Request) -> Viewer:
        v = current(request)
        if v is None:
            raise HTTPException(status_code=401, detail="log in first")
        return v

    def refuse(v: Viewer, status: int, sentence: str) -> JSONResponse:
        """A refused API call: ``{"detail": sentence}`` in the viewer's language."""
        return JSONResponse({"detail": lookup(v.lang, sentence)}, status_code=status)

    def check_csrf(v: Viewer, token: str) -> None:
        if not token or not secrets.compare_digest(token, v.session.csrf):
            raise HTTPException(status_code=403, detail="bad or missing CSRF token")

    def known_object(sha256: str) -> EvidenceObject:
        if not SHA_RE.match(sha256):
            raise HTTPException(status_code=404, detail="no such item")
        with case.sessions() as s:
            obj = s.get(EvidenceObject, sha256)
        if obj is None:
            raise HTTPException(status_code=404, detail="no such item")
        return obj

    def wants_html(request: Request) -> bool:
        return "text/html" in request.headers.get("accept", "") and not route_path(request).startswith("/api/")

    def error_page(request: Request, status: int, sentence: str, headers: Mapping[str, str] | None = None) -> Response:
        """A browser gets a page in the app's look with the sentence; a script gets ``{"detail": ...}``: both in
        the language of whoever is logged in (the workspace shows the detail in its status line)."""
        try:  # the page keeps its menu for someone logged in
            viewer = current(request) if status != 401 else None
        except Exception:
            viewer = None
        sentence = lookup(viewer.lang if viewer is not None else "en", sentence)
        if wants_html(request):
            heading = {404: "Not found", 403: "Not allowed", 429: "Too many tries", 416: "Not available"}.get(
                status, "That did not work")
            return templates.TemplateResponse(request, "error.html", {
                "v": viewer, "status": status, "heading": heading, "sentence": sentence,
                "title": case.meta.get("title", "")}, status_code=status, headers=headers)
        return JSONResponse({"detail": sentence}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 401 and not route_path(request).startswith(("/api/", "/media/", "/thumbs/", "/reports/",
                                                                           "/raw/")):
            return RedirectResponse("/login", status_code=303)
        detail = str(exc.detail)
        if exc.status_code == 404 and detail in ("Not Found", "no such item"):
            detail = "There is no such page or item in this case: check the address, or go back to the queue."
        return error_page(request, exc.status_code, detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        # one sentence naming the value and what it must be, not the validator's wording or data structure
        return error_page(request, 422, plain_sentence(exc.errors()))

    @app.get("/api/docs", response_class=HTMLResponse)
    def api_docs(request: Request, v: Viewer = Depends(require)) -> Response:
        """The JSON endpoints, listed from the OpenAPI document (no script, nothing from a CDN)."""
        rows = [{"path": path, "method": method.upper(), "summary": (op.get("description") or op.get("summary") or
                                                                     "").strip().split("\n")[0]}
                for path, ops in sorted(app.openapi().get("paths", {}).items()) for method, op in ops.items()]
        return templates.TemplateResponse(request, "api_docs.html", {"v": v, "rows": rows,
                                                                     "title": case.meta.get("title", "")})

    # -- login -----------------------------------------------------------------

    if team is not None:
        @app.get("/login")
        def team_login(request: Request) -> Response:
            """On a team server everyone logs in at the server's own /login."""
            return RedirectResponse("/login", status_code=303)

    else:  # a case served alone: its own accounts log in here
        @app.get("/login", response_class=HTMLResponse)
        def login_page(request: Request, error: str = "") -> Response:
            token = secrets.token_urlsafe(32)
            resp = templates.TemplateResponse(request, "login.html", {"csrf": token, "error": error,
                                                                      "title": case.meta.get("title", "")})
            resp.set_cookie(PRELOGIN_CSRF, token, max_age=3600, **cookie_flags)
            return resp

        @app.post("/login")
        def login(request: Request, username: Annotated[str, Form()], password: Annotated[str, Form()],
                  csrf: Annotated[str, Form()]) -> Response:
            cookie = request.cookies.get(PRELOGIN_CSRF, "")
            if not cookie or not secrets.compare_digest(cookie, csrf):
                raise HTTPException(status_code=403, detail="bad or missing CSRF token")
            # the socket peer, or what the proxy named with --trusted-proxy said (web/background.py)
            ip = request.client.host if request.client else "?"
            name = username[:64]
            attempt_id = reserve_login_attempt(case, name, ip)
            if attempt_id is None:
                raise HTTPException(status_code=429, detail="Too many failed logins for this user name or "
                                    "address: wait 15 minutes and try again.",
                                    headers={"Retry-After": str(int(THROTTLE_WINDOW.total_seconds()))})
            with case.sessions() as s:
                user = s.scalars(select(User).where(User.name == username)).first()
            if user is None:
                dummy_check()
                ok = False
            else:
                ok = check_password(user, password) and not user.disabled
            if not ok:
                return RedirectResponse("/login?error=Wrong+user+name+or+password", status_code=303)
            assert user is not None
            token = secrets.token_urlsafe(32)  # always a new session: a planted cookie is never adopted
            digest = tokens.digest(token)
            # the signed event first: a session row exists only with the login event that vouches for it
            signed = case.ledger.append(user.name, "login", None, {"ip": ip, "session": tokens.fingerprint(digest)})
            with case.sessions() as s:
                s.add(WebSession(token_hash=digest, user_id=user.id, csrf=secrets.token_urlsafe(32),
                                 created_at=now(), last_seen=now(), played=[]))
                reserved = s.get(LoginAttempt, attempt_id)
                if reserved is not None:
                    reserved.ok = True
                s.commit()
            tokens.remember(signed, digest)
            resp = RedirectResponse("/", status_code=303)
            resp.set_cookie(SESSION_COOKIE, SessionKeys.cookie(signed["seq"], token),
                            max_age=int(session_lifetime.total_seconds()), **cookie_flags)
            resp.delete_cookie(PRELOGIN_CSRF, **cookie_flags)
            return resp

    @app.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()], v: Viewer = Depends(require)) -> Response:
        check_csrf(v, csrf)
        with case.sessions() as s:
            sess = s.get(WebSession, v.session.token_hash)
            if sess:
                s.delete(sess)
                s.commit()
        audit(v.name, "logout", None, {})
        if team is not None:  # every case's session of this server session ends with it
            return team_logout(request)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, **cookie_flags)
        return resp

    # -- queue -----------------------------------------------------------------

    # a segment's state is the newest review over the same stretch of its file (web/review.py), whatever
    # segment row it was given on: triage run again gives new ids, and a verdict never lands on another stretch
    latest_states = rv.latest_states

    def newest_reviews() -> Any:
        """Per segment with a review over its stretch: (sid, rid) of the newest one."""
        return (select(Segment.id.label("sid"), func.max(Review.id).label("rid"))
                .join(Review, rv.span_match(Review, Segment)).group_by(Segment.id).subquery())

    def queue_counts() -> dict[str, Any]:
        """How many segments are in each review state, and the share that needs nobody's eyes now."""
        with case.sessions() as s:
            total = s.scalar(select(func.count()).select_from(Segment)) or 0
            newest = newest_reviews()
            by_state = dict(s.execute(select(Review.state, func.count()).select_from(newest)
                                      .join(Review, newest.c.rid == Review.id).group_by(Review.state)).all())
            _, cover, _ = dupes_view(s)
        counts = {st: int(by_state.get(st, 0)) for st in rv.STATES}
        for c in cover.values():  # a review given in a copy covers the aligned stretch here (dupes/store.py)
            if c["state"] in counts:
                counts[c["state"]] += 1
        counts[rv.UNREVIEWED] = max(0, total - sum(counts.values()))
        done = sum(counts[st] for st in rv.DONE)
        return {"total": total, "counts": counts, "done": done, "covered": len(cover),
                "percent": round(100.0 * done / total, 1) if total else 100.0}

    def dupes_view(s: Any) -> tuple[Any, dict[int, dict[str, Any]], set[int]]:
        """Near-duplicate clusters, the segments a review in a copy covers, and the copies' segments the source's
        row stands for (custodes.dupes.store; derived at read time, nothing written)."""
        from custodes.dupes.store import queue_view

        return queue_view(s)

    def queue_query(min_score: float, camera: str, reviewed: str, state: str, only: list[str] | None = None,
                    dv: Any = None) -> Any:
        _, cover, hidden = dv if dv is not None else ({}, {}, set())
        q = (select(Segment.id, Segment.sha256, Segment.start_s, Segment.end_s, Segment.score, Segment.reasons,
                    Recording.camera_id, Recording.start_at)
             .outerjoin(Recording, Recording.sha256 == Segment.sha256)
             .where(Segment.score >= min_score))
        if only is not None:  # "my queue": the videos assigned to the viewer
            q = q.where(Segment.sha256.in_(only))
        if camera:  # the camera as shown: every name as read that an investigator corrected into it
            q = q.where(Recording.camera_id.in_(cam_names.readings(cam_names.camera_names(case), camera)))
        if hidden:  # a copy's segment whose stretch the source's row stands for
            q = q.where(Segment.id.not_in(sorted(hidden)))
        newest = newest_reviews()
        reviewed_ids = select(newest.c.sid)
        covered_ids = sorted(cover)
        if state in rv.STATES:
            own = Segment.id.in_(select(newest.c.sid).join(Review, newest.c.rid == Review.id)
                                 .where(Review.state == state))
            by_copy = sorted(k for k, c in cover.items() if c["state"] == state)
            q = q.where(own | Segment.id.in_(by_copy) if by_copy else own)
        elif reviewed == "yes":
            q = q.where(Segment.id.in_(reviewed_ids) | Segment.id.in_(covered_ids) if covered_ids
                        else Segment.id.in_(reviewed_ids))
        elif reviewed == "no" or state == rv.UNREVIEWED:
            q = q.where(Segment.id.not_in(reviewed_ids))
            if covered_ids:
                q = q.where(Segment.id.not_in(covered_ids))
        return q

    def queue_data(min_score: float, camera: str, reviewed: str, limit: int, offset: int = 0,
                   state: str = "", only: list[str] | None = None) -> list[dict[str, Any]]:
        # filters and the limit run in SQL on the score index: a page costs the rows it shows
        with case.sessions() as s:
            dv = dupes_view(s)
            q = queue_query(min_score, camera, reviewed, state, only, dv).order_by(Segment.score.desc(), Segment.id)
            rows = s.execute(q.limit(limit).offset(offset)).all()
            states = latest_states(s, rows)
        cl, cover, _ = dv
        corrected = cam_names.camera_names(case)
        for k, c in cover.items():
            states.setdefault(k, c)
        n = case.display_names({r.sha256 for r in rows} | {x for r in rows for x in cl.others(r.sha256)}
                               | {c["from"] for c in cover.values()})
        return [{"copies": [{"sha256": y, "name": n.get(y, y[:12]), "relation": cl.members[y].relation}
                            for y in cl.others(r.sha256)] if r.sha256 in cl.members
                 and cl.members[r.sha256].source == r.sha256 else [],
                 "covered_by": {"name": n.get(cover[r.id]["from"], ""), "sha256": cover[r.id]["from"],
                                "at": cover[r.id]["at"], "by": cover[r.id]["by"]} if r.id in cover else None,
                 "id": r.id, "sha256": r.sha256, "name": n.get(r.sha256, ""), "start_s": r.start_s,
                 "end_s": r.end_s, "score": round(r.score, 3), "reasons": rv.plain_reasons(r.reasons),
                 "camera": cam_names.shown(corrected, r.camera_id) or "", "reviewed": r.id in states,
                 "state": states[r.id]["state"] if r.id in states else rv.UNREVIEWED,
                 "clock": (r.start_at + timedelta(seconds=r.start_s)).strftime("%Y-%m-%d %H:%M:%S")
                 if r.start_at else ""} for r in rows]

    def assigned(s: Any, user_id: int) -> list[str]:
        """The videos assigned to this user (kept with their settings: work allocation, not evidence)."""
        prefs = s.get(UserPrefs, user_id)
        return [x for x in (prefs.data.get("assigned") or []) if isinstance(x, str)] if prefs else []

    def mine_only(v: Viewer, mine: str) -> list[str] | None:
        if mine not in ("1", "yes", "true"):
            return None
        with case.sessions() as s:
            return assigned(s, v.user.id)

    def assignees() -> list[str]:
        with case.sessions() as s:
            return [u.name for u in s.scalars(select(User).where(User.disabled.is_(False),
                                                                 User.role.in_(CAN_ANNOTATE)).order_by(User.name))
                    if team is None or team.linked(u.name, case)]

    def assign(v: Viewer, to: str, items: list[str]) -> str:
        """Assign the videos to ``to`` (each video to one reviewer at a time), or to nobody when ``to`` is empty;
        signed into the ledger. Returns the sentence saying what was done."""
        if v.user.role not in CAN_SUPERSEDE_ANY:
            raise HTTPException(status_code=403, detail="Only an investigator or an admin assigns videos.")
        items = list(dict.fromkeys(x for x in items if isinstance(x, str)))
        if not items or len(items) > 1000:
            raise HTTPException(status_code=422, detail="Name between 1 and 1000 videos to assign.")
        for sha in items:
            known_object(sha)
        if to and to not in assignees():
            raise HTTPException(status_code=422, detail=f"{to[:64]} is not a reviewer, investigator or admin of "
                                "this case: choose someone from the list.")
        with case.sessions() as s:
            target = s.scalars(select(User).where(User.name == to)).first() if to else None
            chosen = set(items)
            for row in s.scalars(select(UserPrefs)):  # off anyone else's queue
                had = [x for x in (row.data.get("assigned") or []) if isinstance(x, str)]
                if target is None or row.user_id != target.id:
                    kept = [x for x in had if x not in chosen]
                    if kept != had:
                        row.data = {**row.data, "assigned": kept}
            if target is not None:
                theirs = s.get(UserPrefs, target.id)
                data = dict(theirs.data) if theirs else {}
                had = [x for x in (data.get("assigned") or []) if isinstance(x, str)]
                data["assigned"] = had + [x for x in items if x not in had]
                if theirs is None:
                    s.add(UserPrefs(user_id=target.id, data=data))
                else:
                    theirs.data = data
            s.log(v.name, "assign", None, {"user": to or None, "items": items})
            s.commit()
        n = f"{len(items)} video{'s' if len(items) != 1 else ''}"
        return f"Assigned {n} to {to}." if to else f"{n} no longer assigned to anyone."

    @app.post("/api/assignments")
    def api_assign(request: Request, body: dict[str, Any], v: Viewer = Depends(require)) -> dict[str, Any]:
        """Assign videos to a reviewer's queue (investigators and admins): ``{"user": "rita", "items": [sha256,
        ...]}``; ``"user": ""`` takes them off everyone's queue. Signed into the ledger (``assign``)."""
        check_csrf(v, request.headers.get("x-csrf-token", ""))
        items = body.get("items")
        if not isinstance(items, list):
            raise HTTPException(status_code=422, detail="items must be a list of SHA-256 digests.")
        return {"message": assign(v, str(body.get("user") or ""), items)}

    @app.post("/assign")
    def assign_form(request: Request, csrf: Annotated[str, Form()], user: Annotated[str, Form()] = "",
                    items: Annotated[list[str] | None, Form()] = None, back: Annotated[str, Form()] = "",
                    v: Viewer = Depends(require)) -> Response:
        check_csrf(v, csrf)
        from urllib.parse import urlencode

        said = assign(v, user, items or [])
        query = back if re.fullmatch(r"[A-Za-z0-9_.=&%+-]*", back[:500]) else ""
        return RedirectResponse(f"{base(request)}/?{query}{'&' if query else ''}{urlencode({'said': said})}",
                                status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def queue_page(request: Request, min_score: float = 0.0, camera: str = "", reviewed: str = "", state: str = "",
                   page: Annotated[int, Query(ge=1, le=100000)] = 1, mine: str = "", said: str = "",
                   v: Viewer = Depends(require)) -> Response:
        with case.sessions() as s:
            corrected = cam_names.camera_names(case)
            cameras = sorted({corrected.get(c, c) for (c,) in s.execute(select(Recording.camera_id).distinct())
                              if c})
        only = mine_only(v, mine)
        rows = queue_data(min_score, camera, reviewed, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE, state, only)
        more = len(rows) > PAGE_SIZE
        for r in rows[:PAGE_SIZE]:
            views.record(v.name, "queue", r["sha256"], detail=f"page {page}")
        return templates.TemplateResponse(request, "queue.html", {
            "v": v, "rows": rows[:PAGE_SIZE], "cameras": cameras, "page": page, "more": more,
            "first_rank": (page - 1) * PAGE_SIZE, "progress": queue_counts(), "states": rv.ALL_STATES,
            "f": {"min_score": min_score, "camera": camera, "reviewed": reviewed, "state": state,
                  "mine": "1" if only is not None else ""},
            "assignees": assignees() if v.user.role in CAN_SUPERSEDE_ANY else [], "said": lookup(v.lang, said[:200]),
            "title": case.meta.get("title", "")})

    @app.get("/api/queue")
    def api_queue(min_score: float = 0.0, camera: str = "", reviewed: str = "", state: str = "",
                  limit: Annotated[int, Query(ge=1, le=10000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0, mine: str = "",
                  v: Viewer = Depends(require)) -> list[dict[str, Any]]:
        """The ranked review queue (same filters as the page; ``mine=1``: only the videos assigned to you), each
        segment with its review state."""
        rows = queue_data(min_score, camera, reviewed, limit, offset, state, mine_only(v, mine))
        for r in rows:
            views.record(v.name, "queue", r["sha256"], detail="api")
        return rows

    @app.get("/api/progress")
    def api_progress(v: Viewer = Depends(require)) -> dict[str, Any]:
        """Segments per review state and the share reviewed."""
        return queue_counts()

    @app.get("/api/queue/neighbour")
    def api_neighbour(request: Request, segment: Annotated[int, Query(ge=0, le=MAX_ROW_ID)],
                      direction: Annotated[str, Query(pattern="^(next|previous)$")] = "next",
                      v: Viewer = Depends(require)) -> dict[str, Any]:
        """The segment after (or before) this one in the queue's order (score, then id), whatever file it is in;
        ``{"segment": null}`` at either end."""
        with case.sessions() as s:
            cur = s.get(Segment, segment)
            if cur is None:
                raise HTTPException(status_code=404, detail="There is no such segment in this case.")
            if direction == "next":
                cond = (Segment.score < cur.score) | ((Segment.score == cur.score) & (Segment.id > cur.id))
                order: Any = (Segment.score.desc(), Segment.id)
            else:
                cond = (Segment.score > cur.score) | ((Segment.score == cur.score) & (Segment.id < cur.id))
                order = (Segment.score.asc(), Segment.id.desc())
            _, cover, hidden = dupes_view(s)
            skip = sorted(set(cover) | hidden)  # a stretch a copy's review covers, or the source's row stands for
            if skip:
                cond = cond & Segment.id.not_in(skip)
            row = s.execute(select(Segment.id, Segment.sha256, Segment.start_s).where(cond).order_by(*order)
                            .limit(1)).first()
        if row is None:
            return {"segment": None}
        return {"segment": row.id, "sha256": row.sha256, "start_s": row.start_s,
                "url": f"{base(request)}/items/{row.sha256}?seg={row.id}&t={row.start_s}"}

    # -- item and media --------------------------------------------------------

    def item_data(sha256: str, lang: str = "en") -> dict[str, Any]:
        """One item as the API gives it; ``lang``: the language of the edits' wording (the page's)."""
        with case.sessions() as s:
            media = s.get(MediaProbe, sha256)
            rec = s.get(Recording, sha256)
            # columns, not ORM objects: a file's hundred segments are read-only here and cost a third as much
            segs = s.execute(select(Segment.id, Segment.sha256, Segment.start_s, Segment.end_s, Segment.score,
                                    Segment.reasons).where(Segment.sha256 == sha256).order_by(Segment.start_s)).all()
            anns = list(s.scalars(select(Annotation).where(Annotation.sha256 == sha256).order_by(Annotation.id)))
            prov = list(s.scalars(select(Provenance).where(Provenance.sha256 == sha256)))
            cuts = list(s.scalars(select(Signal).where(Signal.sha256 == sha256, Signal.kind == "scene_cut")
                                  .order_by(Signal.start_s)))
            states = latest_states(s, segs)
            from custodes.dupes.store import covered, load_clusters, member_panel

            cl = load_clusters(s)
            cover = covered(s, cl, segs) if sha256 in cl.members else {}
            found_edits = edit_marks(s, sha256, rec, lang)
            der = s.get(Derivative, sha256)
            parent_names = sorted({p.original_name for p in s.scalars(select(Provenance).where(
                Provenance.sha256 == der.parent_sha256))}) if der else []
        superseded = {a.supersedes for a in anns if a.supersedes}
        dn = case.display_names(cl.others(sha256)) if sha256 in cl.members else {}
        copies = member_panel(cl, sha256, dn)
        for k, c in cover.items():
            states.setdefault(k, {**c, "from_name": dn.get(c["from"], c["from"][:12])})
        gaps_near = gaps_beside(rec) if rec is not None and rec.camera_id and rec.start_at and rec.end_at else []
        names = sorted({p.original_name for p in prov})
        derived = None
        if der is not None:  # a redacted copy has no provenance of its own: it is named after its original
            derived = {"parent": der.parent_sha256, "kind": der.kind, "parent_names": parent_names,
                       "by": der.created_by, "at": der.created_at.isoformat(sep=" ")[:19]}
            what = "redacted copy" if der.kind.startswith("redact") else f"{der.kind} copy"
            names = names or [f"{what} of {', '.join(parent_names) or der.parent_sha256[:12]}"]
        return {
            "sha256": sha256, "names": names, "derived": derived, "kind": item_kind(media, names),
            "origins": [p.source_path + (f" ! {p.member_path}" if p.member_path else "") for p in prov],
            "duration": media.duration_s if media else None, "status": media.status if media else "",
            "status_reason": (media.reason or "").rstrip(".") if media else "",
            "camera": cam_names.shown(cam_names.camera_names(case), rec.camera_id) or "" if rec else "",
            "camera_read": rec.camera_id or "" if rec else "",
            "start": rec.start_at.isoformat(sep=" ") if rec and rec.start_at else "",
            "gaps": gaps_near,
            # an edit, a camera switch or a jump in time inside one file (analyze.scene_cuts): the keyframe pass
            # dates a cut to the keyframe after it, the frame pass to the frame
            "cuts": [{"t": c.start_s, "found_by": scene_cuts.found_by(c.data)} for c in cuts],
            "edits": found_edits,
            "segments": [{"id": g.id, "start_s": g.start_s, "end_s": g.end_s, "score": round(g.score, 3),
                          "reasons": rv.plain_reasons(g.reasons),
                          "state": states[g.id]["state"] if g.id in states else rv.UNREVIEWED,
                          "state_by": states[g.id]["by"] if g.id in states else "",
                          "covered_by": {"sha256": cover[g.id]["from"], "name": states[g.id]["from_name"],
                                         "at": cover[g.id]["at"]} if g.id in cover else None} for g in segs],
            "copies": copies,
            "annotations": [{"id": a.id, "start_s": a.start_s, "end_s": a.end_s, "label": a.label, "people": a.people,
                             "note": a.note, "author": a.author, "created_at": a.created_at.isoformat(),
                             "supersedes": a.supersedes, "current": a.id not in superseded} for a in anns],
        }

    def edit_marks(s: Any, sha256: str, rec: Recording | None, lang: str = "en") -> list[dict[str, Any]]:
        """Edits inside the file (analyze.edits: the clock jumping or running backwards, holes in the frame
        timestamps, a picture size change, a creation time unlike the clock): where each is (``t``, seconds into
        the file) and, worded as the export report words them, the moment (``at``) and what was seen."""
        from custodes.export.report import edit_rows

        found = [g for g in s.scalars(select(Signal).where(Signal.sha256 == sha256, Signal.analyzer == edits.ANALYZER)
                                      .order_by(Signal.start_s, Signal.id))]
        plain = [{"kind": g.kind, "start_s": g.start_s, "end_s": g.end_s,
                  "seen": str((g.data or {}).get("seen") or g.kind)} for g in found]
        rows = edit_rows(plain, rec.start_at if rec is not None else None, lang)
        return [{"t": g.start_s if g.start_s is not None and math.isfinite(g.start_s) else None, "kind": g.kind,
                 **row, "seen": lookup(lang, row["seen"])} for g, row in zip(found, rows, strict=True)]

    def gaps_beside(rec: Recording) -> list[dict[str, Any]]:
        """Recording missing on this camera right after or right before this file (as timeline/build.py finds
        gaps: more than GAP_TOLERANCE_S and at most MAX_GAP_S with no file of the camera), from this camera's
        neighbouring rows only: the page does not read the whole case's timeline."""
        from custodes.timeline.build import GAP_TOLERANCE_S, MAX_GAP_S

        assert rec.start_at is not None and rec.end_at is not None
        tol = timedelta(seconds=GAP_TOLERANCE_S)
        corrected = cam_names.camera_names(case)  # the camera as shown: all its readings (timeline.cameras)
        same = cam_names.readings(corrected, corrected.get(rec.camera_id or "", rec.camera_id or ""))
        cam = Recording.camera_id.in_(same) & (Recording.sha256 != rec.sha256) & \
            Recording.start_at.is_not(None) & Recording.end_at.is_not(None)
        out: list[dict[str, Any]] = []
        with case.sessions() as s:
            covered_after = s.scalar(select(func.count()).select_from(Recording).where(
                cam, Recording.start_at <= rec.end_at + tol, Recording.end_at > rec.end_at)) or 0
            if not covered_after:
                nxt = s.scalar(select(func.min(Recording.start_at)).where(cam, Recording.start_at > rec.end_at + tol))
                if nxt is not None and (nxt - rec.end_at).total_seconds() <= MAX_GAP_S:
                    out.append({"where": "after", "seconds": round((nxt - rec.end_at).total_seconds(), 1),
                                "until": nxt.isoformat(sep=" ")})
            covered_before = s.scalar(select(func.count()).select_from(Recording).where(
                cam, Recording.end_at >= rec.start_at - tol, Recording.start_at < rec.start_at)) or 0
            if not covered_before:
                prev = s.scalar(select(func.max(Recording.end_at)).where(cam, Recording.end_at < rec.start_at - tol))
                if prev is not None and (rec.start_at - prev).total_seconds() <= MAX_GAP_S:
                    out.append({"where": "before", "seconds": round((rec.start_at - prev).total_seconds(), 1),
                                "since": prev.isoformat(sep=" ")})
        return out

    def item_kind(media: MediaProbe | None, names: list[str]) -> str:
        """What the item is, for showing it safely: video, audio, image, text, pdf or other."""
        ext = names[0].rsplit(".", 1)[-1].lower() if names and "." in names[0] else ""
        if media is not None and media.video_codec and media.status in ("ok", "damaged"):
            container = (media.container or "").lower()
            # a still image probes as a one-frame "video" stream in an image container
            if ext in IMAGE_TYPES or any(x in container for x in ("image2", "png_pipe", "jpeg_pipe", "webp_pipe")):
                return "image"
            return "video"
        if media is not None and media.audio_codec and media.status in ("ok", "damaged"):
            return "audio"
        if ext in IMAGE_TYPES:
            return "image"
        if ext == "pdf":
            return "pdf"
        if ext in ("txt", "csv", "log", "md", "json", "xml", "srt", "vtt", "html", "htm", "eml"):
            return "text"
        return "other"

    def strip_data(sha256: str) -> dict[str, Any]:
        """What the workspace's timeline strip and transcript draw: score curve, transcript words, clock."""
        with case.sessions() as s:
            curve = s.execute(select(Signal.start_s, Signal.end_s, Signal.value).where(
                Signal.sha256 == sha256, Signal.kind == "score").order_by(Signal.start_s)).all()
            words = list(s.scalars(select(TranscriptSegment).where(TranscriptSegment.sha256 == sha256)
                                   .order_by(TranscriptSegment.start_s)))
            rec = s.get(Recording, sha256)
            found_edits = edit_marks(s, sha256, rec)
        return {
            "edits": found_edits,
            "curve": [[round((a + b) / 2, 2), round(float(val), 3)] for a, b, val in curve
                      if math.isfinite(val)],
            "transcript": [{"start_s": w.start_s, "end_s": w.end_s, "language": w.language, "text": w.text,
                            "words": [{"start_s": x.get("start"), "end_s": x.get("end"), "word": x.get("word", "")}
                                      for x in (w.words or []) if x.get("start") is not None]} for w in words],
            "clock_start": rec.start_at.isoformat() if rec and rec.start_at else None,
            "clock_source": rec.source if rec else "none",
            "camera": cam_names.shown(cam_names.camera_names(case), rec.camera_id) or "" if rec else "",
        }

    @app.get("/api/items/{sha256}/strip")
    def api_strip(sha256: str, v: Viewer = Depends(require)) -> dict[str, Any]:
        """The workspace's data for one item: segments with review states, annotations, cuts, score curve,
        transcript words and the overlay clock."""
        known_object(sha256)
        views.record(v.name, "workspace data", sha256)
        with case.sessions() as s:
            media = s.get(MediaProbe, sha256)
            segs = s.execute(select(Segment.id, Segment.sha256, Segment.start_s, Segment.end_s, Segment.score)
                             .where(Segment.sha256 == sha256).order_by(Segment.start_s)).all()
            anns = s.execute(select(Annotation.id, Annotation.start_s, Annotation.end_s, Annotation.label,
                                    Annotation.supersedes).where(Annotation.sha256 == sha256)
                             .order_by(Annotation.id)).all()
            cuts = s.execute(select(Signal.start_s).where(Signal.sha256 == sha256, Signal.kind == "scene_cut")
                             .order_by(Signal.start_s)).all()
            states = latest_states(s, segs)
        superseded = {a.supersedes for a in anns if a.supersedes}
        return {"sha256": sha256, "duration": media.duration_s if media else None,
                "segments": [{"id": g.id, "start_s": g.start_s, "end_s": g.end_s, "score": round(g.score, 3),
                              "state": states[g.id]["state"] if g.id in states else rv.UNREVIEWED} for g in segs],
                "annotations": [{"id": a.id, "start_s": a.start_s, "end_s": a.end_s, "label": a.label,
                                 "current": a.id not in superseded} for a in anns],
                "cuts": [{"t": t} for (t,) in cuts], **strip_data(sha256)}

    @app.get("/items/{sha256}", response_class=HTMLResponse)
    def item_page(request: Request, sha256: str, t: float = 0.0,
                  seg: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0, v: Viewer = Depends(require)) -> Response:
        known_object(sha256)
        return render_item(request, v, sha256, t, seg=seg)

    def render_item(request: Request, v: Viewer, sha256: str, t: float, form: dict[str, str] | None = None,
                    error: str = "", status: int = 200, seg: int = 0) -> Response:
        """The workspace page; after a refused annotation, with the sentence why and the form as it was typed."""
        data = item_data(sha256, v.lang)
        error = lookup(v.lang, error)
        audit(v.name, "view", sha256, {"page": "item"})
        high = max((g["score"] for g in data["segments"]), default=0.0) >= 0.8
        t = t if math.isfinite(t) and 0 <= t <= MAX_DAY_S else 0.0
        current = next((g for g in data["segments"] if g["id"] == seg), None) or next(
            (g for g in data["segments"] if g["start_s"] <= t < g["end_s"]), None)
        text = ""
        if data["kind"] == "text":
            with case.store.open(sha256) as fh:
                text = fh.read(TEXT_PREVIEW).decode("utf-8", errors="replace")
        return templates.TemplateResponse(request, "item.html", {
            "v": v, "item": data, "t": t, "taxonomy": TAXONOMY, "person_roles": PERSON_ROLES,
            "label_keys": LABEL_KEYS, "states": rv.STATES, "current": current, "text": text,
            "content_warning": high, "can_annotate": v.user.role in CAN_ANNOTATE, "form": form, "error": error,
            "title": case.meta.get("title", "")}, status_code=status)

    @app.get("/raw/{sha256}")
    def raw(sha256: str, v: Viewer = Depends(require)) -> Response:
        """An image shown as an image, anything else offered as a download: never rendered by the browser as
        a page (nosniff, a sandboxing CSP and, for non-images, attachment)."""
        known_object(sha256)
        data = item_data(sha256)
        audit(v.name, "download" if data["kind"] != "image" else "view", sha256, {"page": "raw"})
        ext = data["names"][0].rsplit(".", 1)[-1].lower() if data["names"] and "." in data["names"][0] else ""

        def body() -> Iterator[bytes]:
            with case.store.open(sha256) as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk

        if data["kind"] == "image" and ext in IMAGE_TYPES:
            return StreamingResponse(body(), media_type=IMAGE_TYPES[ext])
        name = re.sub(r"[^A-Za-z0-9._-]", "_", data["names"][0] if data["names"] else sha256)[:100]
        return StreamingResponse(body(), media_type="application/octet-stream",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/items/{sha256}")
    def api_item(sha256: str, v: Viewer = Depends(require)) -> dict[str, Any]:
        """One item: names, origins, segments and annotations (with edit history)."""
        known_object(sha256)
        audit(v.name, "view", sha256, {"page": "api"})
        return item_data(sha256)

    @app.get("/media/{sha256}")
    def media(request: Request, sha256: str, v: Viewer = Depends(require)) -> Response:
        """The original, streamed with HTTP range requests. The first request per session is audited."""
        known_object(sha256)
        size = case.store.size(sha256)
        with case.sessions() as s:
            sess = s.get(WebSession, v.session.token_hash)
            if sess is not None and sha256 not in (sess.played or []):
                sess.played = [*(sess.played or []), sha256]
                s.commit()
                audit(v.name, "playback", sha256, {"range": request.headers.get("range", "")})
        start, end = 0, size - 1
        status = 200
        rng = request.headers.get("range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                raise HTTPException(status_code=416, detail="bad range", headers={"Content-Range": f"bytes */{size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:
                start = max(0, size - int(m.group(2)))
            if start > end or start >= size:
                raise HTTPException(status_code=416, detail="range not satisfiable",
                                    headers={"Content-Range": f"bytes */{size}"})
            status = 206
        # every request counted in the batched view record, with the bytes served (the first one per
        # session also has its own playback event above)
        views.record(v.name, "playback", sha256, nbytes=end - start + 1)

        def body() -> Iterator[bytes]:
            with case.store.open(sha256) as fh:
                fh.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = fh.read(min(1 << 20, left))
                    if not chunk:
                        return
                    left -= len(chunk)
                    yield chunk

        headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return StreamingResponse(body(), status_code=status, media_type="video/mp4", headers=headers)

    @app.get("/thumbs/{sha256}.jpg")
    def thumbnail(sha256: str, t: Annotated[float, Query(ge=0, le=86400)] = 0.0, sheet: bool = False,
                  v: Viewer = Depends(require)) -> Response:
        """A frame (at ``t``) or a contact sheet of the item, as JPEG; cached under reports/thumbs."""
        from custodes.media.thumbs import contact_sheet, frame_at, jpeg

        known_object(sha256)
        with case.sessions() as s:
            m = s.get(MediaProbe, sha256)
        if m is not None and not m.video_codec:  # a document, an archive, an audio file: no picture in it
            raise HTTPException(status_code=404, detail="This item is not a video: there is no picture to show.")
        views.record(v.name, "contact sheet" if sheet else "frame", sha256, detail="" if sheet else f"{t:.1f} s")
        cache = case.reports / "thumbs" / (f"{sha256}-sheet.jpg" if sheet else f"{sha256}-{t:.1f}.jpg")
        if not cache.exists():
            ref = case.store.media_ref(sha256)
            img = contact_sheet(ref, float(m.duration_s or 0) if m else 0.0) if sheet else frame_at(ref, t)
            if img is None:
                raise HTTPException(status_code=404, detail="no decodable frame")
            if case.keys:  # an encrypted case keeps no plaintext pictures on disk
                return Response(jpeg(img), media_type="image/jpeg")
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".part")
            tmp.write_bytes(jpeg(img))
            tmp.replace(cache)
        return Response(cache.read_bytes(), media_type="image/jpeg")

    # -- annotations -----------------------------------------------------------

    def seconds(what: str, value: str, limit: float, clock_start: datetime | None = None) -> float:
        """Seconds into the file, from ``12.5`` or, when the recording's clock is known, a clock time
        ``14:03:07`` (read as the first such time within the recording)."""
        m = CLOCK_RE.match(value.strip())
        if m and clock_start is not None:
            h, mi, sec = int(m.group(1)), int(m.group(2)), float(m.group(3) or 0)
            if h > 23 or mi > 59 or sec >= 60:
                raise FormError(422, f"The {what} time {value[:20]!r} is not a clock time: write it like 14:03:07.")
            of_day = h * 3600 + mi * 60 + sec
            start_of_day = clock_start.hour * 3600 + clock_start.minute * 60 + clock_start.second \
                + clock_start.microsecond / 1e6
            t = (of_day - start_of_day) % 86400
            if t > limit:
                raise FormError(422, f"The {what} time {value[:20]!r} is outside this recording, which runs from "
                                f"{clock_start.strftime('%H:%M:%S')} for {limit:.1f} s.")
            return round(t, 2)
        if m:
            raise FormError(422, f"This recording has no clock from its overlay: give the {what} time in seconds "
                            "into the file, like 12.5.")
        try:
            t = float(value)
        except ValueError:
            raise FormError(422, f"The {what} time must be a number of seconds, like 12.5, or a clock time like "
                            f"14:03:07 (got {value[:20]!r}).") from None
        if not math.isfinite(t) or not 0 <= t <= limit:
            raise FormError(422, f"The {what} time must be between 0 and {limit:.1f} s, the length of this "
                            f"recording (got {value[:20]!r}).")
        return t

    def annotation_id(value: str) -> int | None:
        text = value.strip().lstrip("#")
        if not text:
            return None
        if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_ROW_ID:
            raise FormError(422, "The “Edits annotation #” field must be the number of an annotation of this "
                            "item, like 12; leave it empty to add a new annotation.")
        return int(text)

    @app.post("/items/{sha256}/annotations")
    def annotate(request: Request, sha256: str, csrf: Annotated[str, Form()], label: Annotated[str, Form()],
                 start_s: Annotated[str, Form()], end_s: Annotated[str, Form()],
                 note: Annotated[str, Form()] = "", person: Annotated[str, Form()] = "",
                 person_role: Annotated[str, Form()] = "", supersedes: Annotated[str, Form()] = "",
                 v: Viewer = Depends(require)) -> Response:
        check_csrf(v, csrf)
        known_object(sha256)
        if v.user.role not in CAN_ANNOTATE:
            raise HTTPException(status_code=403, detail="Your role cannot annotate.")
        form = {"label": label, "start_s": start_s, "end_s": end_s, "note": note, "person": person,
                "person_role": person_role, "supersedes": supersedes}
        try:
            saved = save_annotation(v, sha256, form)
            return RedirectResponse(f"{base(request)}/items/{sha256}?t={saved['start_s']}", status_code=303)
        except FormError as exc:
            status, message = exc.args
            if "text/html" in request.headers.get("accept", ""):  # a browser's form: show it again, as typed
                return render_item(request, v, sha256, 0.0, form, message, status)
            return refuse(v, status, message)

    @app.post("/api/items/{sha256}/annotations", status_code=201)
    def api_annotate(request: Request, sha256: str, body: dict[str, Any],
                     v: Viewer = Depends(require)) -> Response:
        """Save an annotation in the background (the workspace): ``{"label", "start_s", "end_s", "note",
        "people": [{"pseudonym", "role"}], "supersedes"}`` with the session's CSRF token in ``X-CSRF-Token``.
        201 with the annotation; 422 with a sentence; 409 when the same annotation is already saved."""
        check_csrf(v, request.headers.get("x-csrf-token", ""))
        known_object(sha256)
        if v.user.role not in CAN_ANNOTATE:
            raise HTTPException(status_code=403, detail="Your role cannot annotate.")
        people = body.get("people") or []
        if not isinstance(people, list) or not all(isinstance(p, dict) for p in people) or len(people) > 20:
            return refuse(v, 422, "People must be a list of pseudonyms with roles.")
        form = {k: str(body.get(k) if body.get(k) is not None else "")[:6000]
                for k in ("label", "start_s", "end_s", "note", "supersedes")}
        form["person"], form["person_role"] = "", ""
        try:
            saved = save_annotation(v, sha256, form, [{"pseudonym": str(p.get("pseudonym", "")),
                                                       "role": str(p.get("role", ""))} for p in people],
                                    refuse_same=True)
        except FormError as exc:
            status, message = exc.args
            return refuse(v, status, message)
        return JSONResponse({"annotation": saved, "segments": item_data(sha256)["segments"],
                             "message": f"Saved as annotation #{saved['id']}."}, status_code=201)

    def save_annotation(v: Viewer, sha256: str, form: dict[str, str],
                        people_in: list[dict[str, str]] | None = None, refuse_same: bool = False) -> dict[str, Any]:
        label, note, person = form["label"], form["note"], form["person"].strip()
        if label not in TAXONOMY:
            raise FormError(422, "Choose a label from the list.")
        with case.sessions() as s:
            media = s.get(MediaProbe, sha256)
            rec = s.get(Recording, sha256)
        # nothing may lie outside the recording (a second of slack for rounding); an unprobed item, a day
        limit = min(MAX_DAY_S, float(media.duration_s) + 1.0) if media and media.duration_s else MAX_DAY_S
        clock = rec.start_at if rec is not None and rec.source == "overlay" else None
        start_s, end_s = seconds("start", form["start_s"], limit, clock), seconds("end", form["end_s"], limit, clock)
        if end_s < start_s:
            raise FormError(422, "The end time is before the start time: swap them.")
        if len(note) > 5000:
            raise FormError(422, f"The note has {len(note)} characters; at most 5000 fit: shorten it.")
        people = []
        for p in ([{"pseudonym": person, "role": form["person_role"]}] if person else []) + (people_in or []):
            name = p["pseudonym"].strip()
            if not name:
                continue
            if len(name) > 64:
                raise FormError(422, "A pseudonym has at most 64 characters.")
            if p["role"] not in PERSON_ROLES:
                raise FormError(422, f"The role of {name} must be victim, perpetrator or witness.")
            people.append({"pseudonym": name, "role": p["role"]})
        sup = annotation_id(form["supersedes"])
        with case.sessions() as s:
            if sup is not None:
                old = s.get(Annotation, sup)
                if old is None or old.sha256 != sha256:
                    raise FormError(422, f"There is no annotation #{sup} on this item: check the number in "
                                    "“Edits annotation #”.")
                if old.author != v.name and v.user.role not in CAN_SUPERSEDE_ANY:
                    raise FormError(403, f"Annotation #{sup} is {old.author}'s: only its author, an investigator "
                                    "or an admin may edit it; add yours as a new annotation instead.")
            same = s.scalars(select(Annotation).where(
                Annotation.sha256 == sha256, Annotation.author == v.name, Annotation.label == label,
                Annotation.start_s == start_s, Annotation.end_s == end_s, Annotation.note == note,
                Annotation.supersedes.is_(None) if sup is None else Annotation.supersedes == sup)).all()
            twin = next((x for x in same if x.people == people), None)
            if twin is not None:
                # the same form sent again (a retry after a reset or a 500, a double click): saved once
                if refuse_same:
                    raise FormError(409, f"This annotation is already saved as #{twin.id}: nothing was added.")
                return {"id": twin.id, "start_s": twin.start_s, "end_s": twin.end_s, "label": twin.label}
            a = Annotation(sha256=sha256, start_s=start_s, end_s=end_s, label=label, people=people,
                           note=note, author=v.name, created_at=now(), supersedes=sup)
            s.add(a)
            # the event is appended with the row's seal, before the commit: never a row without its event
            s.log(v.name, "annotate", sha256, lambda: {
                "annotation": a.id, "label": label, "start_s": start_s, "end_s": end_s, "supersedes": sup,
                "note_sha256": hashlib.sha256(note.encode()).hexdigest()})
            # the flagged segments it overlaps are now annotated (each its own review row and signed event)
            overlapping = list(s.scalars(select(Segment).where(Segment.sha256 == sha256, Segment.start_s < end_s + 0.05,
                                                               Segment.end_s > start_s - 0.05)))
            by_file = rv.reviews_by_file(s, [sha256])
            for g in overlapping:
                mine = rv.over(by_file.get(sha256, []), g.start_s, g.end_s)
                if mine and (mine[-1].state in (rv.ANNOTATED, *rv.SECOND_REVIEW) or (
                        rv.second_review(mine) is not None and v.user.role not in CAN_SUPERSEDE_ANY)):
                    continue  # annotated already, or a second reviewer's verdict stands (four eyes)
                add_review(s, v, g, rv.ANNOTATED, "")
            s.commit()
            return {"id": a.id, "start_s": start_s, "end_s": end_s, "label": label, "people": people,
                    "note": note, "author": v.name}

    def add_review(s: Any, v: Viewer, g: Segment, state: str, note: str, overrides: Review | None = None) -> Review:
        # the verdict is about the stretch it judged: its span is in the row and in the signed event, which is
        # all `custodes recover` needs to bring it back (the note only as its hash)
        r = Review(sha256=g.sha256, segment_id=g.id, start_s=g.start_s, end_s=g.end_s, state=state, author=v.name,
                   created_at=now(), note=note)
        s.add(r)
        s.log(v.name, "review", g.sha256, lambda: {
            "review": r.id, "segment": g.id, "state": state, "start_s": r.start_s, "end_s": r.end_s,
            "note_sha256": hashlib.sha256(note.encode()).hexdigest(),
            **({"overrides": overrides.id, "overrides_state": overrides.state, "overrides_author": overrides.author}
               if overrides is not None else {})})
        return r

    @app.post("/api/segments/{segment_id}/review")
    def api_review(request: Request, segment_id: int, body: dict[str, Any],
                   v: Viewer = Depends(require)) -> Response:
        """Record a segment's review state (``{"state", "note"}``; states in web/review.py), sealed and signed.
        Confirming or disputing is a second review: it must come from someone other than whoever reviewed the
        segment before; once given, only an investigator or an admin may record another state over it (the
        event names the verdict it overrides)."""
        check_csrf(v, request.headers.get("x-csrf-token", ""))
        if v.user.role not in CAN_ANNOTATE:
            raise HTTPException(status_code=403, detail="Your role cannot record reviews.")
        state, note = str(body.get("state", "")), str(body.get("note", "") or "")
        if state not in rv.STATES:
            return refuse(v, 422, f"A review state is one of: {', '.join(rv.STATES)}.")
        if len(note) > 2000:
            return refuse(v, 422, "The note has more than 2000 characters: shorten it.")
        with case.sessions() as s:
            g = s.get(Segment, segment_id) if 0 <= segment_id <= MAX_ROW_ID else None
            if g is None:
                raise HTTPException(status_code=404, detail="There is no such segment in this case.")
            before = rv.reviews_over(s, g)  # the reviews over this stretch, whatever segment row they were on
            # x pressed out of habit after annotating must not unsay the annotation; an investigator may decide so
            if state == rv.NOTHING and v.user.role not in CAN_SUPERSEDE_ANY:
                anns = list(s.scalars(select(Annotation).where(Annotation.sha256 == g.sha256).order_by(Annotation.id)))
                replaced = {a.supersedes for a in anns if a.supersedes}
                current = [a for a in anns if a.id not in replaced and a.start_s < g.end_s and a.end_s > g.start_s]
                if current:
                    a = current[-1]
                    return refuse(v, 409, f"This segment holds annotation #{a.id} ({a.label}, by {a.author}): "
                                  "it is not 'nothing of concern'. Press n to go on, or change the annotation "
                                  "first; an investigator may still decide otherwise.")
            settled = rv.second_review(before)
            overrides = None
            if state in rv.SECOND_REVIEW:
                first = rv.first_reviewers(before)
                if not first:
                    return refuse(v, 422, "Nobody has reviewed this segment yet: there is nothing to confirm or "
                                  "dispute.")
                if v.name in first:  # also when others reviewed it too: four eyes means none of yours
                    return refuse(v, 422, "A second review must come from someone else: you reviewed this segment "
                                  "yourself.")
            elif settled is not None:
                if v.user.role not in CAN_SUPERSEDE_ANY:
                    return refuse(v, 403, f"{settled.author} gave this segment a second review ({settled.state}): "
                                  "only an investigator or an admin may record another state over it now.")
                overrides = before[-1] if before[-1].state in rv.SECOND_REVIEW else None
            if before and before[-1].state == state and before[-1].author == v.name and before[-1].note == note:
                return JSONResponse({"review": before[-1].id, "state": state, "progress": queue_counts(),
                                     "message": f"Already recorded: {state}."})
            r = add_review(s, v, g, state, note, overrides)
            s.commit()
            rid = r.id
        return JSONResponse({"review": rid, "state": state, "progress": queue_counts(),
                             "message": f"Recorded: {state}."})

    @app.get("/settings", response_class=HTMLResponse)
    def settings_page(request: Request, saved: int = 0, v: Viewer = Depends(require)) -> Response:
        return templates.TemplateResponse(request, "settings.html", {"v": v, "saved": saved,
                                                                     "title": case.meta.get("title", "")})

    def store_prefs(v: Viewer, changes: dict[str, Any]) -> dict[str, bool]:
        with case.sessions() as s:
            row = s.get(UserPrefs, v.user.id)
            data = dict(row.data) if row else dict(v.safe)
            data.update({k: bool(changes[k]) for k in SAFE_KEYS if k in changes})
            if changes.get("lang") in LANGUAGES:
                data["lang"] = changes["lang"]
            if row is None:
                s.add(UserPrefs(user_id=v.user.id, data=data))
            else:
                row.data = data
            s.commit()
        return {k: bool(data.get(k)) for k in SAFE_KEYS}

    @app.post("/settings")
    def settings_form(request: Request, csrf: Annotated[str, Form()], blur: Annotated[str, Form()] = "",
                      grey: Annotated[str, Form()] = "", mute: Annotated[str, Form()] = "",
                      lang: Annotated[str, Form()] = "", exposure_limit_min: Annotated[str | None, Form()] = None,
                      exposure_break_min: Annotated[str | None, Form()] = None,
                      case_exposure_limit_min: Annotated[str | None, Form()] = None,
                      case_exposure_break_min: Annotated[str | None, Form()] = None,
                      exposure_form: Annotated[str, Form()] = "", v: Viewer = Depends(require)) -> Response:
        check_csrf(v, csrf)
        limits = {"exposure_limit_min": exposure_limit_min, "exposure_break_min": exposure_break_min,
                  "case_exposure_limit_min": case_exposure_limit_min,
                  "case_exposure_break_min": case_exposure_break_min}
        # an empty field arrives as None: in the page's form (exposure_form) it means "the case's"
        exposure.save_settings(case, v, {k: x or "" for k, x in limits.items() if x is not None or exposure_form})
        store_prefs(v, {"blur": blur == "1", "grey": grey == "1", "mute": mute == "1", "lang": lang})
        return RedirectResponse(base(request) + "/settings?saved=1", status_code=303)

    @app.post("/api/prefs")
    def api_prefs(request: Request, body: dict[str, Any], v: Viewer = Depends(require)) -> dict[str, Any]:
        """Safe viewing, each part on its own: ``{"blur": true, "grey": false, "mute": true}``; remembered for
        the user (every page, thumbnail and contact sheet follows it). The exposure meter's limits too:
        ``exposure_limit_min`` and ``exposure_break_min`` (null: the case's), and for an admin
        ``case_exposure_limit_min`` and ``case_exposure_break_min``, the case's defaults (web/exposure.py)."""
        check_csrf(v, request.headers.get("x-csrf-token", ""))
        if "lang" in body and body["lang"] not in LANGUAGES:
            raise HTTPException(status_code=422, detail=f"The language is one of: {', '.join(LANGUAGES)}.")
        limits = exposure.save_settings(case, v, {k: x for k, x in body.items() if "exposure_" in k})
        safe = store_prefs(v, {k: body[k] for k in (*SAFE_KEYS, "lang") if k in body})
        return {"safe": safe, "lang": body.get("lang", v.lang), "exposure": limits}

    @app.post("/settings/safe-viewing")
    def safe_viewing(request: Request, csrf: Annotated[str, Form()], on: Annotated[str, Form()],
                     v: Viewer = Depends(require)) -> Response:
        check_csrf(v, csrf)
        with case.sessions() as s:
            u = s.get(User, v.user.id)
            assert u is not None
            u.safe_viewing = on == "1"
            s.commit()
        store_prefs(v, dict.fromkeys(SAFE_KEYS, on == "1"))
        return RedirectResponse(base(request) + "/", status_code=303)

    exposure.install(app, templates, case, require, check_csrf)  # the exposure meter's endpoints (issue 22)

    # -- search and timeline ---------------------------------------------------

    @app.get("/search", response_class=HTMLResponse)
    def search_page(request: Request, q: str = "", v: Viewer = Depends(require)) -> Response:
        from custodes.search.index import SearchError, annotation_hits, search

        hits: list[dict[str, Any]] = []
        error = ""
        if q.strip():
            try:  # reviewers' annotations first (their labels, notes and pseudonyms), then the index's hits
                hits = annotation_hits(case, q, limit=100) + search(case, q, limit=100)
            except SearchError as exc:
                error = str(exc)
            views.record(v.name, "search", None, detail=q[:200])
            for h in hits:
                views.record(v.name, "search hit", h["sha256"], detail=q[:200])
        return templates.TemplateResponse(request, "search.html", {"v": v, "q": q, "hits": hits, "error": error,
                                                                   "title": case.meta.get("title", "")})

    # the timeline page, its lanes' data and the camera corrections (web/timeline_view.py)
    timeline_view.install(app, templates, case, require, check_csrf, views.record)
    # the strip's audio waveform, /api/items/{sha}/peaks (web/waveform_view.py)
    waveform_view.install(app, case, require, known_object, views.record)
    if team is None:  # changing one's own password; on a team server its own /password (web/password_view.py)
        from custodes.web import password_view

        password_view.install(app, templates, case, require, check_csrf)

    @app.get("/redactions", response_class=HTMLResponse)
    def redactions_page(request: Request, v: Viewer = Depends(require)) -> Response:
        """Redacted copies with the frames where face detection was least sure: check them before publishing."""
        from custodes.store.db import Derivative

        views.record(v.name, "redactions", None)
        with case.sessions() as s:
            ders = list(s.scalars(select(Derivative).order_by(Derivative.created_at.desc())))
        n = case.display_names({d.parent_sha256 for d in ders})
        rows = [{"sha256": d.sha256, "parent": d.parent_sha256, "name": n.get(d.parent_sha256, ""),
                 "by": d.created_by, "at": d.created_at.isoformat(sep=" ")[:19], "params": d.params,
                 "check": d.params.get("lowest_confidence_frames", [])} for d in ders]
        return templates.TemplateResponse(request, "redactions.html", {"v": v, "rows": rows,
                                                                       "title": case.meta.get("title", "")})

    @app.get("/complaints", response_class=HTMLResponse)
    def complaints_page(request: Request, v: Viewer = Depends(require)) -> Response:
        from custodes.timeline.complaints import complaints_report

        views.record(v.name, "complaints", None)
        return templates.TemplateResponse(request, "complaints.html", {
            "v": v, "rows": complaints_report(case), "title": case.meta.get("title", "")})

    @app.get("/reports/timeline.svg")
    def timeline_svg(v: Viewer = Depends(require)) -> Response:
        # drawn for each request and never written to the case folder: in an encrypted case a plaintext plot
        # would name the files, cameras, times and gaps
        from custodes.timeline.build import build_timeline, render_svg

        views.record(v.name, "timeline plot", None)
        return Response(render_svg(build_timeline(case)).encode(), media_type="image/svg+xml")

    return app
