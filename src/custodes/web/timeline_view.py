"""The timeline page of the review app: lanes per camera over days, zoomable, clickable into the player.

Each camera is a lane: its recordings as bars, the gaps between them (time the camera recorded nothing the case
holds), the cuts inside files, and the flagged segments with their review state; a click opens the workspace at
that moment. An investigator (or admin) corrects a misread camera name or merges two names into one camera on
this page; the correction is a signed ledger event (``timeline.cameras``), and the lanes, gaps and overlaps
are computed again with it. The page works without JavaScript as lists and forms; ``static/timeline.js``
draws the lanes from ``/api/timeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from custodes.store.case import Case
from custodes.store.db import Segment
from custodes.timeline.build import build_timeline
from custodes.timeline.cameras import CameraNameError, camera_names, rename_camera
from custodes.web import review as rv
from custodes.web.i18n import lookup

CAN_RENAME = ("admin", "investigator")


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(sep=" ") if t is not None else None


def timeline_data(case: Case) -> dict[str, Any]:
    """The timeline as the page draws it: per camera its recordings (with their flagged segments and review
    states, as clock times), gaps and cuts; the names as read behind each camera; the whole span."""
    doc = build_timeline(case)
    shas = {r["sha256"] for c in doc["cameras"] for r in c["recordings"]}
    with case.sessions() as s:
        segs = list(s.scalars(select(Segment).where(Segment.sha256.in_(list(shas))).order_by(Segment.start_s)))
        states = rv.latest_states(s, segs)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for g in segs:
        by_file.setdefault(g.sha256, []).append({
            "id": g.id, "start_s": round(g.start_s, 2), "end_s": round(g.end_s, 2), "score": round(g.score, 3),
            "state": states[g.id]["state"] if g.id in states else rv.UNREVIEWED})
    corrected = camera_names(case)
    lanes = []
    starts, ends = [], []
    for c in doc["cameras"]:
        recs = []
        for r in c["recordings"]:
            starts.append(r["start"])
            ends.append(r["end"])
            recs.append({"sha256": r["sha256"], "name": r["name"], "start": _iso(r["start"]), "end": _iso(r["end"]),
                         "duration_s": round((r["end"] - r["start"]).total_seconds(), 2),
                         "source": r["source"], "deleted": r["deleted"], "cuts_s": r["cuts_s"],
                         "segments": by_file.get(r["sha256"], [])})
        readings = sorted({r["camera_read"] for r in c["recordings"] if r.get("camera_read")})
        lanes.append({"camera": c["camera"], "readings": readings,
                      "corrected": any(corrected.get(x, x) != x for x in readings), "recordings": recs,
                      "gaps": [{"start": _iso(g["start"]), "end": _iso(g["end"]), "duration_s": g["duration_s"]}
                               for g in c["gaps"]]})
    span = {"start": _iso(min(starts)) if starts else None, "end": _iso(max(ends)) if ends else None}
    return {"cameras": lanes, "span": span, "unplaced": len(doc["unplaced"]),
            "overlaps": [{"cameras": o["cameras"], "start": _iso(o["start"]), "end": _iso(o["end"])}
                         for o in doc["overlaps"]],
            "gaps": [{"camera": g["camera"], "start": _iso(g["start"]), "end": _iso(g["end"]),
                      "duration_s": g["duration_s"]} for g in doc["gaps"]]}


def _seconds(d: float) -> str:
    """A gap's length as people say it: 42 s, 12 min 5 s, 3 h 20 min."""
    d = max(0.0, float(d))
    if d < 60:
        return f"{d:.0f} s"
    if d < 3600:
        m, sec = divmod(round(d), 60)
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, rest = divmod(round(d), 3600)
    return f"{h} h {rest // 60} min" if rest // 60 else f"{h} h"


def _minute(t: Any) -> str:
    """A clock time to the second, as the page lists it (no microseconds)."""
    if isinstance(t, datetime):
        return (t + timedelta(microseconds=500_000)).replace(microsecond=0).isoformat(sep=" ")
    return str(t or "")[:19]


def install(app: Any, templates: Any, case: Case, require: Callable[..., Any],
            check_csrf: Callable[[Any, str], None], record_view: Callable[[str, str, str | None], None]) -> None:
    """The timeline page, its data and the camera corrections on the review app."""
    router = APIRouter()
    templates.env.filters["human_seconds"] = _seconds
    templates.env.filters["to_second"] = _minute

    def page(request: Request, v: Any, error: str = "", done: str = "", status: int = 200,
             form: dict[str, str] | None = None) -> Response:
        doc = build_timeline(case)
        return templates.TemplateResponse(request, "timeline.html", {
            "v": v, "doc": doc, "title": case.meta.get("title", ""), "can_rename": v.user.role in CAN_RENAME,
            "error": error, "done": done, "form": form or {}}, status_code=status)

    @router.get("/timeline", response_class=HTMLResponse)
    def timeline_page(request: Request, v: Any = Depends(require)) -> Response:
        record_view(v.name, "timeline", None)
        return page(request, v)

    @router.get("/api/timeline")
    def api_timeline(v: Any = Depends(require)) -> dict[str, Any]:
        record_view(v.name, "timeline", None)
        return {**timeline_data(case), "can_rename": v.user.role in CAN_RENAME}

    def do_rename(v: Any, camera: str, to: str, reason: str) -> dict[str, Any]:
        if v.user.role not in CAN_RENAME:
            raise PermissionError("Only an investigator or an admin can correct camera names.")
        return rename_camera(case, v.name, camera, to, reason)

    def said(r: dict[str, Any]) -> str:
        if r["merge"]:
            return f"{r['camera']} is now part of camera {r['to']} (signed into the case's ledger)."
        return f"Camera {r['camera']} is now called {r['to']} (signed into the case's ledger)."

    @router.post("/timeline/cameras")
    def rename_form(request: Request, csrf: Annotated[str, Form()] = "", camera: Annotated[str, Form()] = "",
                    to: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                    v: Any = Depends(require)) -> Response:
        check_csrf(v, csrf)
        form = {"camera": camera, "to": to, "reason": reason}
        try:
            r = do_rename(v, camera, to, reason)
        except PermissionError as exc:
            return page(request, v, error=str(exc), status=403, form=form)
        except CameraNameError as exc:
            return page(request, v, error=str(exc), status=422, form=form)
        return page(request, v, done=said(r))

    @router.post("/api/cameras/rename")
    async def rename_api(request: Request, v: Any = Depends(require)) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"detail": "Send the correction as JSON: camera, to, reason."}, status_code=422)
        check_csrf(v, request.headers.get("x-csrf-token", ""))
        from starlette.concurrency import run_in_threadpool

        try:
            r = await run_in_threadpool(do_rename, v, str(body.get("camera") or ""), str(body.get("to") or ""),
                                        str(body.get("reason") or ""))
        except PermissionError as exc:
            return JSONResponse({"detail": lookup(v.lang, str(exc))}, status_code=403)
        except CameraNameError as exc:
            return JSONResponse({"detail": lookup(v.lang, str(exc))}, status_code=422)
        return JSONResponse({**r, "said": lookup(v.lang, said(r))}, status_code=201)

    app.include_router(router)
