"""The exposure meter (issue 22): how much flagged footage a reviewer has watched today, a daily limit and break
reminders, so that a team can keep to the limits an oversight body sets against secondary trauma.

What is counted: wall seconds of playback while the playhead is inside a flagged segment (static/exposure.js),
at any speed, not while paused, seeking or waiting for data. The browser reports them as spans of wall-clock
time, ``[start_ms, end_ms]``, every 15 s, when playback pauses, and on ``pagehide`` (``navigator.sendBeacon``).
Each report carries all of that tab's spans of the last day, not only the new ones, and the server keeps the
*union* of everything reported for the user: a report sent twice, a beacon that repeats the last periodic
report, or two tabs playing at the same moment count those seconds once, and a report lost on the way is made
good by the next one from the same tab.

"Today" is the user's local day, from the time-zone offset the browser sends (minutes east of UTC, or UTC when
none is sent): the seconds are those of the union inside that day's midnight-to-midnight window. "Continuous"
viewing, for the break reminder, is flagged footage since the last break: the reviewer dismissed a reminder, or
went ``BREAK_GAP_S`` without any flagged footage.

Kept in the user's ``UserPrefs.data`` (not evidence, not sealed) under ``"exposure"``, the last two days of
spans only; the limits under ``"exposure_limit_min"`` and ``"exposure_break_min"``. The case's defaults, which
an admin sets, are in ``exposure.json`` in the case folder (two numbers; not evidence either), and each change of
them is signed into the ledger. Continuing past the daily limit is allowed, knowingly, and signed into the
ledger as an ``exposure.override`` event with the minutes watched.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from custodes.store.case import Case
from custodes.store.db import UserPrefs
from custodes.web import i18n

DEFAULT_LIMIT_MIN = 60
DEFAULT_BREAK_MIN = 20
LIMIT_RANGE = (1, 720)  # minutes of flagged footage a day
BREAK_RANGE = (0, 240)  # minutes of continuous flagged footage before a reminder; 0: no reminders
BREAK_GAP_S = 300  # five minutes without flagged footage count as a break
KEEP_MS = 50 * 3600 * 1000  # spans kept: "today" in any time zone (UTC-12 to UTC+14) lies within them
MAX_SPANS = 4000  # stored per user, after merging (the oldest go first)
MAX_SPANS_PER_REPORT = 2000
MAX_SPAN_MS = 6 * 3600 * 1000
SKEW_MS = 60_000  # a browser clock further off than this is corrected, to the minute
DAY_MS = 86_400_000
DEFAULTS_FILE = "exposure.json"
CAN_SET_CASE_DEFAULT = ("admin",)

# the server's clock in seconds since the epoch; the tests set a fixed instant
clock: Callable[[], float] = time.time

# this module's strings in Russian; joined to the interface's dictionary (web/i18n.py) on import
RU = {
    "Flagged footage watched today:": "Просмотрено отмеченных записей сегодня:", "min": "мин",
    "over your daily limit": "дневной предел превышен",
    "Exposure to flagged footage": "Нагрузка от тяжёлых записей",
    "How much flagged footage you watch: the minutes played inside flagged segments, counted per day in your "
    "time zone. At the daily limit the video stops and a notice asks you to stop for today; you may go on, and "
    "that is recorded in the case ledger.":
        "Сколько отмеченных записей вы смотрите: минуты воспроизведения внутри отмеченных фрагментов, за сутки по "
        "вашему часовому поясу. При достижении дневного предела видео останавливается и появляется предложение "
        "на сегодня закончить; можно продолжить, и это записывается в журнал дела.",
    "Daily limit (minutes)": "Дневной предел (минут)",
    "Break reminder after (minutes of continuous viewing; 0: none)":
        "Напоминать о перерыве после (минут непрерывного просмотра; 0 — не напоминать)",
    "empty: the case default": "пусто — как принято в деле",
    "Case default, for everyone without their own (admin)": "Принято в деле — для всех, кто не задал своё (админ.)",
    "You have reached your daily limit of flagged footage": "Вы достигли дневного предела тяжёлых записей",
    "The video is paused.": "Видео остановлено.",
    "It is a good moment to stop for today: step away from the screen, talk to someone, do something ordinary. "
    "The footage will still be here tomorrow.":
        "Хороший момент, чтобы закончить на сегодня: отойдите от экрана, поговорите с кем-нибудь, займитесь "
        "чем-то обычным. Записи никуда не денутся до завтра.",
    "If you must go on, you may: continuing is recorded in the case ledger, so that your team can see the load.":
        "Если продолжить необходимо, это возможно: продолжение записывается в журнал дела, чтобы команда видела "
        "нагрузку.",
    "Stop for today": "Закончить на сегодня", "Continue knowingly": "Продолжить осознанно",
    "Time for a break": "Пора сделать перерыв",
    "Flagged footage without a break:": "Отмеченных записей без перерыва:",
    "Stand up, look away from the screen, breathe slowly for a few minutes.":
        "Встаньте, отведите взгляд от экрана, несколько минут спокойно подышите.",
    "Back to work": "Вернуться к работе",
    "The exposure meter could not reach the server: the minutes are kept in this tab and sent again.":
        "Счётчик нагрузки не смог связаться с сервером: минуты сохранены во вкладке и будут отправлены снова.",
}
i18n.RU.update(RU)


class ExposureError(ValueError):
    """Bad input, as one sentence for the person who sent it."""


_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(case: Case) -> threading.Lock:
    """One lock per case and process around each read-modify-write of a user's exposure (two tabs at once)."""
    with _locks_guard:
        return _locks.setdefault(case.root, threading.Lock())


def now_ms() -> int:
    return int(clock() * 1000)


# -- spans ---------------------------------------------------------------------


def merge(spans: list[list[int]]) -> list[list[int]]:
    """The union of ``[start, end]`` spans, sorted, overlapping and touching ones joined."""
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def seconds_within(spans: list[list[int]], start: int, end: int) -> float:
    """Seconds of the (merged) spans inside ``[start, end)``."""
    return sum(max(0, min(e, end) - max(s, start)) for s, e in spans) / 1000.0


def continuous_seconds(spans: list[list[int]], now: int, since: int) -> float:
    """Seconds of flagged footage since the last break: after ``since`` (a dismissed reminder), and after the
    last gap of ``BREAK_GAP_S`` or more (including one up to now)."""
    gap = BREAK_GAP_S * 1000
    total, later = 0, now
    for s, e in reversed(spans):
        if later - e >= gap or e <= since:
            break
        total += e - max(s, since)
        later = s
    return total / 1000.0


def local_day(now: int, tz_min: int) -> tuple[str, int, int]:
    """The local day at ``now`` for a zone ``tz_min`` minutes east of UTC: its date and its bounds (ms UTC)."""
    off = tz_min * 60_000
    start = (now + off) // DAY_MS * DAY_MS - off
    return datetime.fromtimestamp((start + off) / 1000, UTC).strftime("%Y-%m-%d"), start, start + DAY_MS


def tz_offset(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        tz = float(value)
    except (TypeError, ValueError):
        tz = math.nan
    if not math.isfinite(tz) or tz != int(tz) or not -840 <= tz <= 840:
        raise ExposureError("The time-zone offset (tz) is whole minutes east of UTC, from -840 to 840: send it "
                            "as the browser gives it, or leave it out for UTC.")
    return int(tz)


def clean_spans(raw: Any, client_now: Any, now: int) -> list[list[int]]:
    """The reported spans as whole milliseconds on the server's clock: a browser clock that is off by more
    than a minute is corrected, to the minute (so that a span sent twice lands on itself); spans older than
    the ones kept are dropped."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_SPANS_PER_REPORT:
        raise ExposureError(f"spans is a list of at most {MAX_SPANS_PER_REPORT} [start_ms, end_ms] pairs of "
                            "wall-clock time: send it as the workspace does.")
    shift = 0
    if client_now is not None:
        if not isinstance(client_now, int | float) or isinstance(client_now, bool) or not math.isfinite(client_now):
            raise ExposureError("now is the browser's clock in milliseconds since 1970: send Date.now().")
        if abs(now - client_now) > SKEW_MS:
            shift = round((now - client_now) / 60_000) * 60_000
    out: list[list[int]] = []
    for pair in raw:
        ok = isinstance(pair, list) and len(pair) == 2 and all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in pair)
        if not ok or not 0 < pair[1] - pair[0] <= MAX_SPAN_MS:
            raise ExposureError("Each span is [start_ms, end_ms], end after start and at most 6 hours long: "
                                "send the spans as the workspace does.")
        s, e = int(pair[0]) + shift, int(pair[1]) + shift
        if e > now + SKEW_MS:
            raise ExposureError("A span ends in the future by the server's clock: send spans of playback that "
                                "has happened, with now set to the browser's Date.now().")
        if e > now - KEEP_MS:
            out.append([s, e])
    return out


# -- settings ------------------------------------------------------------------


def _minutes(value: Any, what: str, low: int, high: int) -> int | None:
    """A limit as typed or sent: whole minutes in range, or None (empty: use the case default)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        m = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        m = math.nan
    if not math.isfinite(m) or m != int(m) or not low <= m <= high:
        raise ExposureError(f"The {what} is a whole number of minutes from {low} to {high} (or empty for the "
                            "case default): correct it and save again.")
    return int(m)


def case_defaults(case: Case) -> dict[str, int]:
    """What an admin set for the case, else 60 minutes a day and a break every 20 minutes."""
    out = {"limit_min": DEFAULT_LIMIT_MIN, "break_min": DEFAULT_BREAK_MIN}
    try:
        stored = json.loads((case.root / DEFAULTS_FILE).read_text())
    except (OSError, ValueError):
        return out
    for key, (low, high) in (("limit_min", LIMIT_RANGE), ("break_min", BREAK_RANGE)):
        v = stored.get(key) if isinstance(stored, dict) else None
        if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high:
            out[key] = v
    return out


def set_case_defaults(case: Case, actor: str, limit_min: int, break_min: int) -> dict[str, int]:
    path = case.root / DEFAULTS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"limit_min": limit_min, "break_min": break_min, "set_by": actor,
                               "at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2) + "\n")
    os.replace(tmp, path)
    case.ledger.append(actor, "exposure.defaults", None, {"limit_min": limit_min, "break_min": break_min})
    return {"limit_min": limit_min, "break_min": break_min}


def settings_of(case: Case, data: dict[str, Any] | None) -> dict[str, Any]:
    """A user's limits: their own where they set one, else the case's."""
    d = data or {}
    defaults = case_defaults(case)
    own_limit, own_break = d.get("exposure_limit_min"), d.get("exposure_break_min")
    return {"limit_min": own_limit if isinstance(own_limit, int) else defaults["limit_min"],
            "break_min": own_break if isinstance(own_break, int) else defaults["break_min"],
            "own_limit_min": own_limit if isinstance(own_limit, int) else None,
            "own_break_min": own_break if isinstance(own_break, int) else None,
            "case_limit_min": defaults["limit_min"], "case_break_min": defaults["break_min"]}


def _prefs(s: Any, user_id: int) -> tuple[Any, dict[str, Any]]:
    row = s.get(UserPrefs, user_id, with_for_update=True)
    return row, dict(row.data) if row is not None else {}


def _write(s: Any, row: Any, user_id: int, data: dict[str, Any]) -> None:
    if row is None:
        s.add(UserPrefs(user_id=user_id, data=data))
    else:
        row.data = data
    s.commit()


def save_settings(case: Case, viewer: Any, changes: dict[str, Any]) -> dict[str, Any]:
    """Store the limits found in ``changes`` (the settings form or ``/api/prefs``): ``exposure_limit_min`` and
    ``exposure_break_min`` for the user (None or "" for the case default), ``case_exposure_limit_min`` and
    ``case_exposure_break_min`` for the case (an admin only). Checked in full before anything is stored;
    bad input is refused with one sentence (HTTP 422)."""
    try:
        return _save_settings(case, viewer, changes)
    except ExposureError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


def _save_settings(case: Case, viewer: Any, changes: dict[str, Any]) -> dict[str, Any]:
    own = {k: _minutes(changes[k], what, *rng) for k, what, rng in (
        ("exposure_limit_min", "daily limit", LIMIT_RANGE), ("exposure_break_min", "break interval", BREAK_RANGE))
        if k in changes}
    case_keys = [k for k in ("case_exposure_limit_min", "case_exposure_break_min")
                 if k in changes and changes[k] not in (None, "")]
    if case_keys and viewer.user.role not in CAN_SET_CASE_DEFAULT:
        raise HTTPException(status_code=403, detail="Only an admin may set the case's default limits: set your "
                                                    "own limits instead.")
    defaults = case_defaults(case)
    new_case = dict(defaults)
    if case_keys:
        new_case["limit_min"] = _minutes(changes.get("case_exposure_limit_min"), "case's daily limit",
                                         *LIMIT_RANGE) or defaults["limit_min"]
        b = _minutes(changes.get("case_exposure_break_min"), "case's break interval", *BREAK_RANGE)
        new_case["break_min"] = defaults["break_min"] if b is None else b
    if own:
        with _lock(case), case.sessions() as s:
            row, data = _prefs(s, viewer.user.id)
            before = {k: data.get(k) for k in own}
            for k, val in own.items():
                if val is None:
                    data.pop(k, None)
                else:
                    data[k] = val
            _write(s, row, viewer.user.id, data)
        if before != own:
            case.ledger.append(viewer.name, "exposure.settings", None, {k: own[k] for k in sorted(own)})
    if case_keys and new_case != defaults:
        set_case_defaults(case, viewer.name, new_case["limit_min"], new_case["break_min"])
    with case.sessions() as s:
        row = s.get(UserPrefs, viewer.user.id)
        return settings_of(case, row.data if row else None)


# -- the meter -----------------------------------------------------------------


def _state(case: Case, data: dict[str, Any], tz: int, now: int) -> dict[str, Any]:
    ex = data.get("exposure") or {}
    spans = ex.get("spans") or []
    day, start, end = local_day(now, tz)
    limits = settings_of(case, data)
    watched = seconds_within(spans, start, end)
    since = continuous_seconds(spans, now, int(ex.get("break_at") or 0))
    overridden = (ex.get("overrides") or {}).get(day)
    return {"day": day, "tz": tz, "watched_s": round(watched, 1), "limit_min": limits["limit_min"],
            "break_min": limits["break_min"], "since_break_s": round(since, 1),
            "at_limit": watched >= limits["limit_min"] * 60, "overridden": bool(overridden),
            "overridden_at": overridden or None,
            "break_due": limits["break_min"] > 0 and since >= limits["break_min"] * 60}


def state(case: Case, user_id: int, tz: int = 0) -> dict[str, Any]:
    with case.sessions() as s:
        row = s.get(UserPrefs, user_id)
        return _state(case, dict(row.data) if row else {}, tz, now_ms())


def report(case: Case, user_id: int, spans: list[list[int]], tz: int = 0,
           then: Callable[[dict[str, Any], dict[str, Any], int, int], None] | None = None) -> dict[str, Any]:
    """Join reported spans (already cleaned) to the user's; ``then(exposure, state, tz, now)`` may change the
    stored exposure under the same lock (a break, an override). Returns the state after."""
    now = now_ms()
    with _lock(case), case.sessions() as s:
        row, data = _prefs(s, user_id)
        ex = dict(data.get("exposure") or {})
        old = ex.get("spans") or []
        joined = merge([list(x) for x in old] + spans)
        joined = [x for x in joined if x[1] > now - KEEP_MS][-MAX_SPANS:]
        changed = joined != old
        ex["spans"] = joined
        if then is not None:
            before = json.dumps(ex, sort_keys=True)
            data["exposure"] = ex
            then(ex, _state(case, data, tz, now), tz, now)
            changed = changed or json.dumps(ex, sort_keys=True) != before
        data["exposure"] = ex
        if changed:
            _write(s, row, user_id, data)
        return _state(case, data, tz, now)


def install(app: Any, templates: Any, case: Case, require: Callable[..., Any],
            check_csrf: Callable[[Any, str], None]) -> None:
    """The meter's endpoints on the review app, and ``exposure_settings(v)`` for the settings page."""
    router = APIRouter()
    templates.env.globals["exposure_settings"] = lambda v: settings_of(case, _data(v.user.id))

    def _data(user_id: int) -> dict[str, Any]:
        with case.sessions() as s:
            row = s.get(UserPrefs, user_id)
            return dict(row.data) if row else {}

    def bad(exc: ExposureError) -> HTTPException:
        return HTTPException(status_code=422, detail=str(exc))

    @router.get("/api/exposure")
    def api_exposure(tz: str = Query(""), v: Any = Depends(require)) -> dict[str, Any]:
        """Flagged footage watched today (seconds), the limits and whether a limit or a break is due;
        ``tz``: the browser's time-zone offset in minutes east of UTC (UTC without it)."""
        try:
            zone = tz_offset(tz)
        except ExposureError as exc:
            raise bad(exc) from exc
        return state(case, v.user.id, zone)

    async def body_of(request: Request, v: Any) -> dict[str, Any]:
        """The JSON body; a beacon (pagehide) sends it as text/plain with the CSRF token inside."""
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise HTTPException(status_code=422, detail="The body is a JSON object: {\"tz\": …, \"now\": …, "
                                                        "\"spans\": [[start_ms, end_ms], …]}.")
        check_csrf(v, request.headers.get("x-csrf-token", "") or str(body.get("csrf") or ""))
        return body

    def posted(v: Any, body: dict[str, Any],
               then: Callable[[dict[str, Any], dict[str, Any], int, int], None] | None = None) -> dict[str, Any]:
        try:
            zone = tz_offset(body.get("tz"))
            spans = clean_spans(body.get("spans"), body.get("now"), now_ms())
        except ExposureError as exc:
            raise bad(exc) from exc
        return report(case, v.user.id, spans, zone, then)

    @router.post("/api/exposure/report")
    async def api_report(request: Request, v: Any = Depends(require)) -> dict[str, Any]:
        """Spans of flagged footage played in one tab, ``{"tz", "now", "spans": [[start_ms, end_ms], …]}``
        (wall-clock ms; the tab's spans of the last day, sent again each time: kept as their union, never
        counted twice). CSRF token in ``X-CSRF-Token``, or in the body as ``csrf`` for a beacon."""
        body = await body_of(request, v)
        return dict(await run_in_threadpool(posted, v, body))

    @router.post("/api/exposure/break")
    async def api_break(request: Request, v: Any = Depends(require)) -> dict[str, Any]:
        """The break reminder was dismissed: continuous viewing counts again from now (spans as in report)."""
        body = await body_of(request, v)

        def took_break(ex: dict[str, Any], _: dict[str, Any], __: int, now: int) -> None:
            ex["break_at"] = now

        return dict(await run_in_threadpool(posted, v, body, took_break))

    @router.post("/api/exposure/override")
    async def api_override(request: Request, v: Any = Depends(require)) -> dict[str, Any]:
        """Continue past the daily limit, knowingly, for the rest of the local day; signed into the ledger
        with the minutes watched (spans as in report)."""
        body = await body_of(request, v)

        def override(ex: dict[str, Any], st: dict[str, Any], _: int, now: int) -> None:
            if not st["at_limit"]:
                raise HTTPException(status_code=409, detail="You are not at your daily limit yet: there is "
                                                            "nothing to continue past.")
            if st["overridden"]:
                return
            at = datetime.fromtimestamp(now / 1000, UTC).isoformat(timespec="seconds")
            days = dict(ex.get("overrides") or {})
            days[st["day"]] = at
            ex["overrides"] = {k: days[k] for k in sorted(days)[-7:]}
            # signed before it is stored: a failure in between can repeat the event, never lose it
            case.ledger.append(v.name, "exposure.override", None, {
                "day": st["day"], "tz": st["tz"], "watched_min": round(st["watched_s"] / 60, 1),
                "limit_min": st["limit_min"]})

        return dict(await run_in_threadpool(posted, v, body, override))

    app.include_router(router)
