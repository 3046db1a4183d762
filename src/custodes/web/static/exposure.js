// The exposure meter (issue 22; server side in web/exposure.py): wall seconds of playback with the playhead
// inside a flagged segment, reported in the background as spans of wall-clock time; the meter in the header;
// a break reminder and, at the daily limit, a full-screen notice with the video paused and blurred.
(function () {
  "use strict";
  const $ = id => document.getElementById(id);
  const video = $("player"), box = $("exposure");
  if (!video || !box || !$("workspace")) return;
  const csrf = document.body.dataset.csrf || "";
  const base = document.body.dataset.base || "";
  const tz = -new Date().getTimezoneOffset();  // minutes east of UTC: the server counts the local day
  const TICK_MS = 250, REPORT_MS = 15000, REFRESH_MS = 60000, KEEP_MS = 26 * 3600 * 1000;
  const flagged = Array.from(document.querySelectorAll("li.segment")).map(li => [Number(li.dataset.start), Number(li.dataset.end)]);
  const inFlagged = t => flagged.some(([a, b]) => t >= a && t < b);
  const limitBox = $("exposure-limit-notice"), breakBox = $("exposure-break-notice");
  let spans = [];      // this tab's spans of flagged playback, [start_ms, end_ms], merged
  let run = null;      // start of the span being played now
  let server = null;   // the server's last answer
  let sentAt = 0;      // everything played before this was in a report the server has answered
  let asked = 0, answered = 0;  // a late answer to an older request is not taken over a newer one
  let dirty = false;
  let rested = 0;      // seconds of continuous viewing already reminded of, until the server has the break

  const add = (s, e) => {
    if (e <= s) return;
    const last = spans[spans.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e); else spans.push([s, e]);
  };
  const all = now => {
    const out = spans.filter(x => x[1] > now - KEEP_MS).map(x => x.slice());
    if (run !== null && now > run) {
      const last = out[out.length - 1];
      if (last && run <= last[1]) last[1] = Math.max(last[1], now); else out.push([run, now]);
    }
    return out;
  };
  const unsent = now => all(now).reduce((n, [s, e]) => n + Math.max(0, e - Math.max(s, sentAt)), 0) / 1000;
  const watched = now => (server ? server.watched_s : 0) + unsent(now);
  const sinceBreak = now => (server ? server.since_break_s : 0) + unsent(now) - rested;
  const open = () => limitBox.open || breakBox.open;
  const blocked = () => !!server && !server.overridden && watched(Date.now()) >= server.limit_min * 60;

  // counting: playing (not paused, seeking or waiting for data), the playhead in a flagged segment, no notice
  // open, and seen or heard
  const counting = () => !video.paused && !video.ended && !video.seeking && video.readyState >= 3 &&
    inFlagged(video.currentTime) && !open() && (document.visibilityState === "visible" || !video.muted);
  const count = now => {
    const on = counting();
    if (on && run === null) run = now;
    if (!on && run !== null) { add(run, now); run = null; dirty = true; soon(); }
    if (on) dirty = true;
  };
  const tick = () => { const now = Date.now(); count(now); render(now); check(now); };

  const take = (id, j) => {
    if (id < answered) return;
    answered = id; server = j; box.hidden = false;
    $("exposure-note").textContent = server.overridden ? box.dataset.over : "";
  };
  const body = now => ({tz, now, spans: all(now)});
  const post = (path, then) => {
    const now = Date.now(), id = ++asked;
    dirty = false;
    return fetch(base + "/api/exposure/" + path, {
      method: "POST", credentials: "same-origin", body: JSON.stringify(body(now)),
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json"}
    }).then(r => r.json().then(j => {
      if (!r.ok) throw new Error(j.detail || String(r.status));
      sentAt = Math.max(sentAt, now); take(id, j); if (then) then(j); render(Date.now());
    })).catch(() => { dirty = true; $("exposure-note").textContent = box.dataset.offline; });
  };
  const refresh = () => {
    const id = ++asked;
    fetch(base + "/api/exposure?tz=" + tz, {credentials: "same-origin"}).then(r => r.ok ? r.json() : null)
      .then(j => { if (j) { take(id, j); render(Date.now()); } }, () => {});
  };
  let timer = null;
  const soon = () => { if (!timer) timer = setTimeout(() => { timer = null; post("report"); }, 1000); };
  const beacon = () => {  // the page goes away: what was played since the last answer, as a beacon
    if (run !== null) { add(run, Date.now()); run = Date.now(); }
    if (!dirty || !navigator.sendBeacon) return;
    const b = body(Date.now()); b.csrf = csrf;  // a beacon sets no headers: the token is in the body
    if (navigator.sendBeacon(base + "/api/exposure/report", new Blob([JSON.stringify(b)], {type: "text/plain"}))) dirty = false;
  };

  const minutes = s => String(Math.floor(s / 60));
  const render = now => {
    if (!server) return;
    const w = watched(now), limit = server.limit_min;
    $("exposure-watched").textContent = minutes(w);
    $("exposure-limit").textContent = String(limit);
    const bar = $("exposure-bar");
    bar.max = limit * 60; bar.value = Math.min(w, limit * 60);
    box.dataset.watched = w.toFixed(1);
    box.classList.toggle("over", w >= limit * 60);
  };

  // the notices: the video paused (and at the limit blurred); keys reach only the notice while it is open
  const pause = () => { if (!video.paused) video.pause(); count(Date.now()); };
  const showLimit = () => {
    if (limitBox.open) return;
    if (breakBox.open) breakBox.close();
    pause(); post("report");
    document.body.classList.add("exposure-blocked");
    $("exposure-limit-watched").textContent = minutes(watched(Date.now()));
    limitBox.showModal();
    $("exposure-stop").focus();
  };
  const showBreak = () => {
    if (open()) return;
    pause();
    $("exposure-break-watched").textContent = minutes(sinceBreak(Date.now()));
    breakBox.showModal();
    $("exposure-resume").focus();
  };
  const check = now => {
    if (!server || limitBox.open) return;
    if (blocked()) { showLimit(); return; }
    if (server.break_min > 0 && sinceBreak(now) >= server.break_min * 60) showBreak();
  };
  const unblock = () => {
    document.body.classList.remove("exposure-blocked");
    if (limitBox.open) limitBox.close();
  };
  $("exposure-continue").addEventListener("click", () => {
    post("override", () => { if (server.overridden || !server.at_limit) unblock(); });
  });
  limitBox.addEventListener("cancel", e => e.preventDefault());  // Esc does not pass the limit
  limitBox.addEventListener("close", () => { if (blocked()) { limitBox.showModal(); $("exposure-stop").focus(); } else document.body.classList.remove("exposure-blocked"); });
  const resume = () => {
    rested += sinceBreak(Date.now());
    if (breakBox.open) breakBox.close();
    post("break", () => { rested = 0; });
  };
  $("exposure-resume").addEventListener("click", resume);
  breakBox.addEventListener("cancel", e => { e.preventDefault(); resume(); });  // Esc dismisses it
  video.addEventListener("play", () => { if (open() || blocked()) video.pause(); else refresh(); });
  // while a notice is open no workspace key (space, r to reveal, n...) reaches the page behind it: this runs
  // before app.js's listeners (window before document); Tab, Enter and Space still work the notice's buttons
  const guard = e => { if (open()) e.stopPropagation(); };
  window.addEventListener("keydown", guard, true);
  window.addEventListener("keyup", guard, true);

  ["pause", "seeking", "seeked", "waiting", "playing", "ended", "ratechange"].forEach(ev => video.addEventListener(ev, tick));
  setInterval(tick, TICK_MS);
  setInterval(() => { if (dirty) post("report"); }, REPORT_MS);
  setInterval(() => { if (!dirty) refresh(); }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => { tick(); if (document.visibilityState === "hidden") beacon(); });
  window.addEventListener("pagehide", beacon);
  refresh();
})();
