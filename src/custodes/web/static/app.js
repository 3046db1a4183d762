// The review app's behaviour: keys, the workspace (player, strip, transcript, background saves), safe viewing.
(function () {
  "use strict";
  const $ = id => document.getElementById(id);
  // the words this script writes, in the page's language (the templates' words come from web/i18n.py)
  const RU = {
    "The server sent no answer: try again.": "Сервер не ответил: попробуйте ещё раз.",
    "The waveform could not be loaded.": "Не удалось загрузить график громкости.",
    "This item has no flagged segments.": "В этом файле нет отмеченных фрагментов.",
    "This item has no flagged segments to review.": "В этом файле нет отмеченных фрагментов для просмотра.",
    "That was the last segment in the queue.": "Это был последний фрагмент в очереди.",
    "This is the first segment in the queue.": "Это первый фрагмент в очереди.",
    "The server could not be reached.": "Сервер недоступен.",
    "The server could not be reached: nothing was saved. Try again.":
      "Сервер недоступен: ничего не сохранено. Попробуйте ещё раз.",
    "Marked in at": "Начало отмечено:", "Marked out at": "Конец отмечен:", "Label:": "Метка:",
    "▶ Play": "▶ Играть", "❚❚ Pause": "❚❚ Пауза", "Recorded:": "Записано:", "Already recorded:": "Уже записано:",
    "% of the queue reviewed.": "% очереди просмотрено.", "Saved as annotation": "Сохранено как разметка",
    "nothing of concern": "ничего тревожного", "annotated": "размечен", "second review wanted": "нужен второй просмотр",
    "confirmed": "подтверждён", "disputed": "оспорен", "unreviewed": "не просмотрен"
  };
  const T = text => (document.documentElement.lang === "ru" && RU[text]) || text;
  const csrf = document.body.dataset.csrf || "";
  const base = document.body.dataset.base || "";  // "" alone, "/c/<case>" on a team server
  const typing = el => el && (["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName) || el.isContentEditable);
  const REMINDER_MS = 45 * 60 * 1000;
  // the break reminder counts one person's time: keyed by who is logged in, ended at logout, and any other
  // user's count dropped on this user's first page, so the next person at the same browser tab starts at zero
  const user = document.body.dataset.user || "";
  const TIMER = "custodes-started";
  const timerKey = TIMER + ":" + user;
  const reminder = $("break-reminder");
  if (user) {
    Object.keys(sessionStorage).filter(k => k.startsWith(TIMER) && k !== timerKey)
      .forEach(k => sessionStorage.removeItem(k));
    const started = Number(sessionStorage.getItem(timerKey)) || Date.now();
    sessionStorage.setItem(timerKey, String(started));
    if (reminder) {
      const left = REMINDER_MS - (Date.now() - started);
      setTimeout(() => { reminder.hidden = false; }, Math.max(0, left));
    }
    document.querySelectorAll("form[action$='/logout']").forEach(f => f.addEventListener("submit", () => {
      sessionStorage.removeItem(timerKey);
    }));
  }
  const help = $("help");
  const toggleHelp = show => { if (help) help.hidden = show === undefined ? !help.hidden : !show; };
  if ($("help-button")) $("help-button").addEventListener("click", () => toggleHelp());
  // widths from data attributes: the CSP forbids inline style attributes
  document.querySelectorAll(".progress .fill").forEach(f => { f.style.width = f.dataset.width + "%"; });
  const post = (url, body) => fetch(url, {
    method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json"},
    body: JSON.stringify(body), credentials: "same-origin"
  }).then(r => r.json().catch(() => ({detail: T("The server sent no answer: try again.")})).then(j => ({ok: r.ok, status: r.status, j})));
  // hold-to-reveal (r or the button): no blur or grey while held
  const reveal = on => {
    document.body.classList.toggle("revealed", on);
    if ($("reveal-note")) $("reveal-note").hidden = !on;
  };
  if ($("reveal")) {
    const b = $("reveal");
    b.addEventListener("pointerdown", () => reveal(true));
    ["pointerup", "pointerleave", "blur"].forEach(e => b.addEventListener(e, () => reveal(false)));
  }
  // a held r whose key-up went to another window must not leave the page revealed
  window.addEventListener("blur", () => reveal(false));
  document.addEventListener("visibilitychange", () => { if (document.hidden) reveal(false); });
  // the queue page: j/k move, Enter opens
  const rows = Array.from(document.querySelectorAll("#queue-table tbody tr[data-href]"));
  let row = -1;
  const focusRow = i => {
    if (!rows.length) return;
    row = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, k) => r.classList.toggle("focus", k === row));
    rows[row].scrollIntoView({block: "nearest"});
  };
  const video = $("player");
  const ws = $("workspace");
  const keys = {};
  document.addEventListener("keydown", e => {
    if (e.key === "Escape") { toggleHelp(false); return; }
    if (typing(document.activeElement)) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && keys.save) { e.preventDefault(); keys.save(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "?") { e.preventDefault(); toggleHelp(); return; }
    if (e.key === " " && video) {
      // one toggle, whatever has focus (a button would also "click" on its keyup)
      e.preventDefault(); e.stopPropagation();
      if (video.paused) video.play(); else video.pause();
      return;
    }
    if (rows.length && (e.key === "j" || e.key === "k")) { focusRow(row + (e.key === "j" ? 1 : -1)); return; }
    if (rows.length && e.key === "Enter" && row >= 0) { location.href = rows[row].dataset.href; return; }
    const f = keys[e.key];
    if (f) { e.preventDefault(); f(e); }
  }, true);
  document.addEventListener("keyup", e => {
    if (e.key === " " && video && !typing(document.activeElement)) e.preventDefault();
    if (e.key === "r") reveal(false);
  }, true);
  keys.r = e => { if (!e.repeat) reveal(true); };
  if (!ws) return;
  // -- the workspace ------------------------------------------------------------
  const sha = ws.dataset.sha;
  const duration = Number(ws.dataset.duration) || 0;
  let current = ws.dataset.seg ? Number(ws.dataset.seg) : null;
  let clockStart = null;
  let strip = null;
  let showClocks = () => {};  // the annotation form's clock times, when there is a form
  const status = (text, bad) => {
    const s = $("status") || $("saved");
    if (!s) return;
    s.textContent = text; s.classList.toggle("bad", !!bad);
  };
  const fmt = t => { const m = Math.floor(t / 60), s = t - 60 * m; return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1); };
  const clockAt = t => {
    if (!clockStart) return "";
    const d = new Date(clockStart.getTime() + t * 1000);
    return d.toISOString().slice(0, 19).replace("T", " ");
  };
  const tabs = name => {
    document.querySelectorAll(".tabs button").forEach(b => b.classList.toggle("on", b.dataset.tab === name));
    document.querySelectorAll(".tab").forEach(p => { p.hidden = p.id !== "tab-" + name; });
  };
  document.querySelectorAll(".tabs button").forEach(b => b.addEventListener("click", () => tabs(b.dataset.tab)));
  keys.g = () => tabs("segments"); keys.t = () => tabs("transcript"); keys.a = () => tabs("annotations");
  const seek = t => { if (video) video.currentTime = Math.max(0, Math.min(duration || t, t)); };
  document.addEventListener("click", e => {
    const a = e.target.closest("a.seek");
    if (a) { e.preventDefault(); seek(Number(a.dataset.t)); if (a.dataset.segId) setCurrent(Number(a.dataset.segId)); }
    const li = e.target.closest("li.segment");
    if (li) setCurrent(Number(li.dataset.segId));
    const w = e.target.closest("#transcript .w");
    if (w) seek(Number(w.dataset.t));
  });
  const setCurrent = id => {
    current = id;
    document.querySelectorAll("li.segment").forEach(li => li.classList.toggle("current", Number(li.dataset.segId) === id));
  };
  if (!video) return;
  video.addEventListener("loadedmetadata", () => { const t = Number(video.dataset.start || 0); if (t) seek(t); });
  video.addEventListener("click", () => { if (video.paused) video.play(); else video.pause(); });
  const play = $("play");
  const syncPlay = () => { play.textContent = T(video.paused ? "▶ Play" : "❚❚ Pause"); };
  video.addEventListener("play", syncPlay); video.addEventListener("pause", syncPlay);
  play.addEventListener("click", () => { if (video.paused) video.play(); else video.pause(); });
  play.addEventListener("keydown", e => { if (e.key === " ") e.preventDefault(); });
  keys.ArrowLeft = e => seek(video.currentTime - (e.shiftKey ? 1 : 5));
  keys.ArrowRight = e => seek(video.currentTime + (e.shiftKey ? 1 : 5));
  // the strip: click anywhere to go there; playhead, ticks, annotation ranges, cuts and the score curve
  const track = $("segment-track");
  const pct = t => (duration ? 100 * t / duration : 0) + "%";
  track.addEventListener("click", e => {
    if (e.target.closest("a.seek")) return;
    const r = track.getBoundingClientRect();
    seek(duration * (e.clientX - r.left) / r.width);
  });
  const ticks = $("ticks");
  if (duration) {
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].find(s => duration / s <= 10) || 3600;
    for (let t = 0; t <= duration; t += step) {
      const s = document.createElement("span");
      s.style.left = pct(t); s.textContent = fmt(t).replace(/\.0$/, "");
      ticks.appendChild(s);
    }
  }
  const drawCurve = () => {
    const c = $("curve");
    if (!strip || !c) return;
    c.width = c.clientWidth; c.height = c.clientHeight;
    const g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    if (!strip.curve.length || !duration) return;
    g.strokeStyle = "#555"; g.lineWidth = 1.5; g.beginPath();
    strip.curve.forEach(([t, v], i) => {
      const x = c.width * t / duration, y = c.height - 12 - (c.height - 26) * v;
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  };
  window.addEventListener("resize", drawCurve);
  // the sound's loudness as a thin band under the score curve (peaks from /peaks, 0-255 per bucket): a picture
  // of loudness, drawn whatever safe viewing's mute says, since nothing here can be heard
  let wave = null;
  const drawWave = () => {
    const c = $("waveform");
    if (!c || !wave) return;
    const ps = wave.peaks || [], bs = Number(wave.bucket_s) || 0;
    c.dataset.reason = wave.reason || "";
    if (!ps.length || !bs || !duration) { c.hidden = true; c.dataset.ready = "1"; return; }
    c.hidden = false; c.title = wave.reason || "";
    c.width = c.clientWidth; c.height = c.clientHeight;
    const g = c.getContext("2d"), w = c.width;
    // between the flagged-segment marks (top 14 px) and the annotation lane (bottom 12 px)
    const mid = 14 + (c.height - 26) / 2, half = (c.height - 26) / 2;
    g.clearRect(0, 0, w, c.height);
    // one column per pixel: the loudest bucket under it; square root so quiet speech still shows
    const col = [];
    for (let x = 0; x < w; x++) {
      const i0 = Math.floor(duration * x / w / bs), i1 = Math.max(i0 + 1, Math.ceil(duration * (x + 1) / w / bs));
      let m = 0;
      for (let i = i0; i < i1 && i < ps.length; i++) if (ps[i] > m) m = ps[i];
      col.push(half * Math.sqrt(m / 255));
    }
    g.fillStyle = "#7d9cbf"; g.beginPath(); g.moveTo(0, mid);
    col.forEach((h, x) => g.lineTo(x, mid - Math.max(0.5, h)));
    for (let x = w - 1; x >= 0; x--) g.lineTo(x, mid + Math.max(0.5, col[x]));
    g.closePath(); g.fill();
    c.dataset.ready = "1"; c.dataset.buckets = String(ps.length);
  };
  window.addEventListener("resize", drawWave);
  // asked for only after the strip's own data, so a first (slow) decode never holds up the page
  const loadWave = () => fetch(base + "/api/items/" + sha + "/peaks", {credentials: "same-origin"})
    .then(r => r.json()).then(d => { wave = d; drawWave(); })
    .catch(() => { wave = {peaks: [], reason: T("The waveform could not be loaded.")}; drawWave(); });
  const drawAnnotations = anns => {
    const lane = $("ann-lane");
    lane.textContent = "";
    anns.filter(a => a.current !== false).forEach(a => {
      const d = document.createElement("div");
      d.className = "ann"; d.style.left = pct(a.start_s);
      d.style.width = "max(3px, " + pct(a.end_s - a.start_s) + ")"; d.title = "#" + a.id + " " + a.label;
      lane.appendChild(d);
    });
  };
  const wordEls = [];
  const renderTranscript = tr => {
    const box = $("transcript");
    if (!tr.length) return;
    $("transcript-empty").hidden = true;
    tr.forEach(seg => {
      const p = document.createElement("p");
      p.lang = seg.language || "";
      const words = seg.words.length ? seg.words : [{start_s: seg.start_s, end_s: seg.end_s, word: seg.text}];
      words.forEach(w => {
        const s = document.createElement("span");
        s.className = "w"; s.dataset.t = w.start_s; s.dataset.end = w.end_s; s.textContent = w.word + " ";
        p.appendChild(s); wordEls.push(s);
      });
      box.appendChild(p);
    });
  };
  fetch(base + "/api/items/" + sha + "/strip", {credentials: "same-origin"}).then(r => r.json()).then(d => {
    strip = d;
    clockStart = d.clock_start ? new Date(d.clock_start + "Z") : null;
    drawCurve(); drawAnnotations(d.annotations); renderTranscript(d.transcript);
    const lane = $("seg-lane");
    d.segments.forEach(g => {  // flagged segments on the strip: each a link to its start
      const a = document.createElement("a");
      a.href = "#"; a.className = "seek mark" + (g.score >= 0.8 ? " high" : ""); a.dataset.t = g.start_s;
      a.dataset.segId = g.id; a.style.left = pct(g.start_s);
      a.style.width = "max(0.5%, " + pct(g.end_s - g.start_s) + ")";
      a.title = Math.round(g.start_s) + "–" + Math.round(g.end_s) + " s, score " + g.score.toFixed(2) + ", " + g.state;
      lane.appendChild(a);
    });
    (d.cuts || []).forEach(c => {
      const m = document.createElement("div"); m.className = "cutm"; m.style.left = pct(c.t); m.title = "cut at " + c.t + " s";
      track.appendChild(m);
    });
    (d.edits || []).forEach(e => {  // edits inside the file (clock jumps, timestamp holes...) at their moment
      if (e.t === null || e.t === undefined) return;
      const m = document.createElement("div"); m.className = "editm"; m.style.left = pct(e.t);
      m.title = e.at + ": " + e.what; track.appendChild(m);
    });
    tick(); showClocks(); loadWave();
  });
  let lastWord = null;
  const tick = () => {
    const t = video.currentTime;
    $("playhead").style.left = pct(t);
    $("time").textContent = fmt(t);
    $("clock").textContent = clockStart ? "clock " + clockAt(t) : "";
    const w = wordEls.find(x => t >= Number(x.dataset.t) && t < Number(x.dataset.end));
    if (w !== lastWord) {
      if (lastWord) lastWord.classList.remove("now");
      if (w) { w.classList.add("now"); if (!$("tab-transcript").hidden) w.scrollIntoView({block: "nearest"}); }
      lastWord = w;
    }
  };
  video.addEventListener("timeupdate", tick);
  video.addEventListener("seeked", tick);
  // a click on the strip or an arrow key moves away from the segment chosen before: x, w, c and d then apply
  // to the segment under the playhead (or to none), never to the one left behind
  video.addEventListener("seeked", () => {
    if (current === null) return;
    const t = video.currentTime, g = segs().find(x => x.id === current);
    if (!g || t < g.start - 0.5 || t > g.end + 0.5) {
      const here = segs().find(x => t >= x.start && t < x.end);
      setCurrent(here ? here.id : null);
    }
  });
  const loop = () => { if (!video.paused) tick(); requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  // next / previous segment across the whole queue
  const segs = () => Array.from(document.querySelectorAll("li.segment")).map(li => ({
    id: Number(li.dataset.segId), start: Number(li.dataset.start), end: Number(li.dataset.end)}));
  const currentSeg = () => {
    if (current !== null) return current;
    const t = video.currentTime, s = segs().find(g => t >= g.start && t < g.end);
    return s ? s.id : (segs()[0] || {}).id;
  };
  const go = direction => {
    const id = currentSeg();
    if (id === undefined || id === null) { status(T("This item has no flagged segments.")); return Promise.resolve(); }
    ws.dataset.moving = "1";  // until it has moved (a test, or a quick second press, can wait for it)
    return fetch(base + "/api/queue/neighbour?segment=" + id + "&direction=" + direction, {credentials: "same-origin"})
      .then(r => r.json()).then(n => {
        if (!n.segment) {
          status(T(direction === "next" ? "That was the last segment in the queue." : "This is the first segment in the queue."));
        } else if (n.sha256 === sha) { seek(n.start_s); setCurrent(n.segment); } else { location.href = n.url; return; }
        ws.dataset.moving = "0";
      }, () => { ws.dataset.moving = "0"; status(T("The server could not be reached."), true); });
  };
  $("next-segment").addEventListener("click", () => go("next"));
  $("prev-segment").addEventListener("click", () => go("previous"));
  keys.n = () => { if (ws.dataset.moving !== "1") go("next"); };
  keys.p = () => { if (ws.dataset.moving !== "1") go("previous"); };
  const setState = (state, then) => {
    const id = currentSeg();
    if (id === undefined || id === null) { status(T("This item has no flagged segments to review.")); return; }
    post(base + "/api/segments/" + id + "/review", {state}).then(({ok, j}) => {
      if (!ok) { status(j.detail, true); return; }
      const li = document.querySelector('li.segment[data-seg-id="' + id + '"] .state');
      if (li) { li.textContent = T(state); li.className = "state state-" + state.replace(/ /g, "-"); }
      const said = document.documentElement.lang === "ru"
        ? T(j.message.startsWith("Already") ? "Already recorded:" : "Recorded:") + " " + T(state) + "." : j.message;
      status(said + " " + j.progress.percent + T("% of the queue reviewed."));
      if (then) then();
    });
  };
  if ($("nothing")) {
    $("nothing").addEventListener("click", () => setState("nothing of concern", () => go("next")));
    $("second").addEventListener("click", () => setState("second review wanted"));
    keys.x = () => setState("nothing of concern", () => go("next"));
    keys.w = () => setState("second review wanted");
    // a second reviewer confirms or disputes what someone else recorded
    $("confirm").addEventListener("click", () => setState("confirmed"));
    $("dispute").addEventListener("click", () => setState("disputed"));
    keys.c = () => setState("confirmed"); keys.d = () => setState("disputed");
  }
  // the annotation form: mark in/out, label keys, clock beside file time, background save
  const form = $("annotate-form");
  if (!form) return;
  const start = $("start_s"), end = $("end_s"), label = $("label"), err = $("annotation-error");
  const range = $("mark-range");
  const toSeconds = v => {
    const m = /^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$/.exec(v.trim());
    if (m && clockStart) {
      const day = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] || 0);
      const s0 = clockStart.getUTCHours() * 3600 + clockStart.getUTCMinutes() * 60 + clockStart.getUTCSeconds();
      return ((day - s0) % 86400 + 86400) % 86400;
    }
    return v.trim() === "" ? NaN : Number(v);
  };
  showClocks = () => {
    const a = toSeconds(start.value), b = toSeconds(end.value);
    $("start-clock").textContent = isFinite(a) && clockStart ? clockAt(a).slice(11) : "";
    $("end-clock").textContent = isFinite(b) && clockStart ? clockAt(b).slice(11) : "";
    if (isFinite(a) && duration) {
      range.hidden = false;
      range.style.left = pct(a);
      range.style.width = pct(Math.max(0, (isFinite(b) ? b : a) - a));
    } else range.hidden = true;
  };
  start.addEventListener("input", showClocks); end.addEventListener("input", showClocks);
  const r1 = t => String(Math.round(t * 10) / 10);
  keys.i = () => { start.value = r1(video.currentTime); if (!(toSeconds(end.value) >= video.currentTime)) end.value = start.value; showClocks(); status(T("Marked in at") + " " + fmt(video.currentTime) + (clockStart ? " (" + clockAt(video.currentTime).slice(11) + ")" : "")); };
  keys.o = () => { end.value = r1(video.currentTime); if (!isFinite(toSeconds(start.value))) start.value = "0"; showClocks(); status(T("Marked out at") + " " + fmt(video.currentTime) + (clockStart ? " (" + clockAt(video.currentTime).slice(11) + ")" : "")); };
  keys.m = () => (isFinite(toSeconds(start.value)) && start.value === end.value ? keys.o() : keys.i());
  Array.from(label.options).slice(1, 8).forEach((o, k) => {
    keys[String(k + 1)] = () => { label.value = o.value; tabs("annotations"); status(T("Label:") + " " + (o.textContent || o.value)); };
  });
  $("add-person").addEventListener("click", () => {
    const row = form.querySelector(".person-row").cloneNode(true);
    row.querySelectorAll("input").forEach(i => { i.value = ""; i.removeAttribute("id"); i.name = ""; });
    row.querySelector("select").name = ""; row.querySelector("select").value = "";
    $("people").appendChild(row); row.querySelector("input").focus();
  });
  const editing = id => {
    $("supersedes").value = id || ""; $("editing").hidden = !id; $("editing-id").textContent = id ? "#" + id : "";
  };
  $("cancel-edit").addEventListener("click", () => editing(null));
  document.addEventListener("click", e => {
    const b = e.target.closest("button.edit");
    if (!b) return;
    const li = b.closest("li");
    editing(b.dataset.id); label.value = b.dataset.label; $("note").value = b.dataset.note;
    start.value = li.dataset.start; end.value = li.dataset.end; showClocks(); tabs("annotations");
  });
  const addToList = a => {
    const ul = $("annotation-list"), none = ul.querySelector("li.none");
    if (none) none.remove();
    const li = document.createElement("li");
    li.dataset.id = a.id; li.dataset.start = a.start_s; li.dataset.end = a.end_s;
    li.textContent = "#" + a.id + " " + a.label + " " + a.start_s.toFixed(1) + "–" + a.end_s.toFixed(1) + " s by " + a.author +
      (a.people || []).map(p => " · " + p.role + ": " + p.pseudonym).join("") + (a.note ? " — " + a.note : "");
    ul.prepend(li);
    if (a.supersedes) { const old = ul.querySelector('li[data-id="' + a.supersedes + '"]'); if (old) old.classList.add("superseded"); }
  };
  let saving = false;
  const save = () => {
    if (saving) return;
    err.hidden = true;
    const people = Array.from(form.querySelectorAll(".person-row")).map(r => ({
      pseudonym: r.querySelector("input").value, role: r.querySelector("select").value})).filter(p => p.pseudonym.trim());
    const body = {label: label.value, start_s: start.value, end_s: end.value, note: $("note").value, people,
      supersedes: $("supersedes").value || null};
    saving = true;
    post(base + "/api/items/" + sha + "/annotations", body).then(({ok, j}) => {
      saving = false;
      if (!ok) { err.textContent = j.detail; err.hidden = false; status(j.detail, true); return; }  // input kept
      addToList({...j.annotation, supersedes: body.supersedes ? Number(body.supersedes) : null});
      (strip ? strip.annotations : []).push(j.annotation); if (strip) drawAnnotations(strip.annotations);
      (j.segments || []).forEach(g => {
        const st = document.querySelector('li.segment[data-seg-id="' + g.id + '"] .state');
        if (st) { st.textContent = T(g.state); st.className = "state state-" + g.state.replace(/ /g, "-"); }
      });
      const saved = document.documentElement.lang === "ru" && j.annotation
        ? T("Saved as annotation") + " #" + j.annotation.id + "." : j.message;
      $("saved").textContent = saved; status(saved);
      label.value = ""; $("note").value = ""; editing(null);
    }).catch(() => {
      saving = false; err.textContent = T("The server could not be reached: nothing was saved. Try again."); err.hidden = false;
      status(err.textContent, true);
    });
  };
  keys.save = save; keys.s = save;
  form.addEventListener("submit", e => { e.preventDefault(); save(); });
})();
