"""Changing one's own password in a case served alone (``custodes serve CASE``; issue 22).

The same page as the team server's /password (web/team.py), with its sentences and their Russian shared from
there: the current password, then the new one twice. The current password is checked under the login's
throttle (the same LoginAttempt rows, counted the same way under the same lock), so this form is no faster a
way to guess a password than /login. A change stores the new argon2id hash, ends every other session of the
user (a stolen session cookie stops working; the one that changed it goes on) and is signed into the ledger as
``user.password`` in the same commit as the sealed account row (never the password or its hash).

On a team server the server's own /password owns the path, and the accounts' passwords are the server's: this
page is not installed there (app.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import LoginAttempt, User, WebSession
from custodes.web.team import (
    EXPIRED,
    MAX_PASSWORD,
    THROTTLED,
    WRONG_CURRENT,
    new_password_problem,
    password_sentence,
)
from custodes.web.users import MIN_PASSWORD, _hasher, check_password


def install(app: FastAPI, templates: Jinja2Templates, case: Case, require: Callable[..., Any],
            check_csrf: Callable[[Any, str], None]) -> None:
    """GET and POST /password on ``app`` (the review app of a case served alone)."""
    # imported here: app.py imports this module inside create_app, after its own names exist
    from custodes.web.app import THROTTLE_WINDOW, reserve_login_attempt

    router = APIRouter()

    def form(request: Request, v: Any, error: str = "", done: bool = False, status: int = 200,
             headers: dict[str, str] | None = None) -> Response:
        """The page, with its one sentence in the user's language; the fields always empty (nothing typed is
        ever sent back)."""
        return templates.TemplateResponse(request, "password.html", {
            "v": v, "title": case.meta.get("title", ""), "done": done, "min_password": MIN_PASSWORD,
            "max_password": MAX_PASSWORD, "error": password_sentence(v.lang, error) if error else ""},
            status_code=status, headers=headers)

    @router.get("/password", response_class=HTMLResponse)
    def password_page(request: Request, done: str = "", v: Any = Depends(require)) -> Response:
        """Change your own password: the current one, then the new one twice."""
        return form(request, v, done=done == "1")

    @router.post("/password", response_class=HTMLResponse)
    def change_password(request: Request, csrf: Annotated[str, Form()] = "", current: Annotated[str, Form()] = "",
                        new: Annotated[str, Form()] = "", again: Annotated[str, Form()] = "",
                        v: Any = Depends(require)) -> Response:
        try:
            check_csrf(v, csrf)
        except HTTPException:  # a form: its answer is this page with a sentence, whatever the request accepts
            return form(request, v, EXPIRED, status=403)
        problem = new_password_problem(current, new, again)
        if problem:
            return form(request, v, problem, status=422)
        ip = request.client.host if request.client else "?"
        attempt = reserve_login_attempt(case, v.name, ip)  # a guess here counts at /login
        if attempt is None:
            return form(request, v, THROTTLED, status=429,
                        headers={"Retry-After": str(int(THROTTLE_WINDOW.total_seconds()))})
        with case.sessions() as s:
            user = s.get(User, v.user.id)
            ok = user is not None and not user.disabled and check_password(user, current)
        if not ok:
            return form(request, v, WRONG_CURRENT, status=403)
        with case.sessions() as s:
            user = s.get(User, v.user.id)
            if user is None or user.disabled:  # disabled between the check and now: nothing to change
                return form(request, v, WRONG_CURRENT, status=403)
            user.password_hash = _hasher.hash(new)
            for other in s.scalars(select(WebSession).where(WebSession.user_id == user.id,
                                                            WebSession.token_hash != v.session.token_hash)):
                s.delete(other)
            reserved = s.get(LoginAttempt, attempt)
            if reserved is not None:
                reserved.ok = True
            # queued on the session: the event is appended with the account row's seal, in the same commit
            s.log(v.name, "user.password", None, {"user": v.name, "by": v.name, "via": "review app",
                                                  "reset": False})
            s.commit()
        return RedirectResponse("/password?done=1", status_code=303)

    app.include_router(router)
