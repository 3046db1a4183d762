"""A request that fails for a reason outside the app (a full disk, a database gone) gets one sentence.

Reviewers see what failed and what to do, never a 500 page or a traceback; the server log gets the same
one line (an unexpected error's traceback goes to a crash file it names). Whatever the request wrote is
sealed or rolled back before the failure reaches here (store/seals.py), so nothing half-saved remains."""

from __future__ import annotations

import html
import logging

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from custodes.errors import crash_file, explain

log = logging.getLogger("custodes.web")


def failure_response(request: Request, exc: Exception) -> Response:
    msg = explain(exc, web=True)
    status = 503 if msg else 500
    if msg:
        log.error("%s %s failed: %s", request.method, request.url.path, explain(exc))
        sentence = msg[0].upper() + msg[1:] + "."
    else:
        # a bug: the browser gets an incident id, never the error's text; the server's log names the crash file
        path = crash_file(exc)
        incident = path.stem.removeprefix("crash-") if path else "unrecorded"
        log.error("%s %s failed: internal error %s (%s)", request.method, request.url.path, type(exc).__name__, path)
        sentence = f"Something went wrong on the server (incident {incident}); nothing of this request was saved. " \
                   "Tell whoever runs the server."
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(f"<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Not saved</title>"
                            f"<main><h1>That did not work</h1><p role=\"alert\">{html.escape(sentence)}</p>"
                            f"<p><a href=\"/\">Back to the queue</a></p></main></html>", status_code=status)
    return JSONResponse({"detail": sentence}, status_code=status)
