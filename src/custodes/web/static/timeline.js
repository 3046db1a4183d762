// The timeline page's lanes: one per camera, recordings, gaps, cuts and flagged segments over clock time.
// Zoom with the wheel, + / − or the buttons; move by dragging or with the arrow keys; a click opens the
// workspace at that moment. Times are the clock times read off the footage, shown as read (no time zone
// conversion): they are parsed and printed as UTC so that the browser's own zone never shifts them.
(function () {
  "use strict";
  const root = document.getElementById("timeline");
  const box = document.getElementById("tl-canvas");
  if (!root || !box) return;
  const base = document.body.dataset.base || "";
  const SVG = "http://www.w3.org/2000/svg";
  const LABEL_W = 130, LANE_H = 30, AXIS_H = 24, MIN_SPAN = 5000, PAD = 4;
  const STEPS = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
    7 * 86400, 30 * 86400].map((s) => s * 1000);
  let data = null, v0 = 0, v1 = 1, full0 = 0, full1 = 1, drag = null;
  const ru = document.documentElement.lang === "ru";
  // a recording bar's name for a screen reader (and for whoever tabs to it): camera, clock times, file
  const recLabel = (camera, r) => {
    const when = `${r.start.slice(0, 19)} – ${r.end.slice(0, 19)}`, name = r.name || r.sha256.slice(0, 12);
    return ru ? `Запись камеры ${camera}, ${when}: ${name}. Enter или пробел открывает её.`
      : `Recording on ${camera}, ${when}: ${name}. Enter or Space opens it.`;
  };

  const parse = (s) => (s ? Date.parse(s.replace(" ", "T") + (/[Z+]/.test(s.slice(10)) ? "" : "Z")) : NaN);
  const pad2 = (n) => String(n).padStart(2, "0");
  function label(ms, step) {
    const d = new Date(ms);
    const day = `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
    const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
    if (step >= 86400000) return day;
    if (step >= 60000) return (d.getUTCHours() === 0 && d.getUTCMinutes() === 0) ? day : hm;
    return `${hm}:${pad2(d.getUTCSeconds())}`;
  }
  function el(name, attrs, parent, title) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (title) {
      const t = document.createElementNS(SVG, "title");
      t.textContent = title;
      e.appendChild(t);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  function fit() {
    const span = Math.max(full1 - full0, MIN_SPAN);
    v0 = full0 - span * 0.02;
    v1 = full0 + span * 1.02;
    draw();
  }
  function zoom(factor, at) {
    const span = v1 - v0;
    const c = at === undefined ? v0 + span / 2 : at;
    const next = Math.min(Math.max(span * factor, MIN_SPAN), Math.max(full1 - full0, MIN_SPAN) * 4);
    v0 = c - (c - v0) * (next / span);
    v1 = v0 + next;
    draw();
  }
  function pan(share) {
    const d = (v1 - v0) * share;
    v0 += d;
    v1 += d;
    draw();
  }
  function open(sha, query) {
    window.location.assign(`${base}/items/${sha}?${query}`);
  }
  function draw() {
    if (!data) return;
    const width = Math.max(box.clientWidth, 480);
    const lanes = data.cameras;
    const height = AXIS_H + lanes.length * LANE_H + PAD;
    const plotW = width - LABEL_W - PAD;
    const x = (ms) => LABEL_W + ((ms - v0) / (v1 - v0)) * plotW;
    // a redraw (zooming or moving by key while a bar has focus) keeps the focus on that recording
    const focused = document.activeElement && box.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-sha") : null;
    box.textContent = "";
    // a group, not an image: an image's parts would be hidden from screen readers, and the bars are buttons
    const svg = el("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "tl-svg", role: "group"}, box);
    el("rect", {x: LABEL_W, y: 0, width: plotW, height, class: "tl-bg"}, svg);
    // zoomed in, bars start left of the plot: clipped to it, so the lane names stay readable
    const clip = el("clipPath", {id: "tl-plot-clip"}, el("defs", {}, svg));
    el("rect", {x: LABEL_W, y: 0, width: plotW, height}, clip);
    const plot = el("g", {"clip-path": "url(#tl-plot-clip)"}, svg);
    // the axis: a step that gives about eight labels across
    const step = STEPS.find((s) => (v1 - v0) / s <= 8) || STEPS[STEPS.length - 1];
    for (let t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      const px = x(t);
      el("line", {x1: px, x2: px, y1: AXIS_H - 6, y2: height, class: "tl-tick"}, plot);
      const tx = el("text", {x: Math.min(px + 3, width - PAD - 56), y: AXIS_H - 9, class: "tl-tick-label"}, plot);
      tx.textContent = label(t, step);
    }
    lanes.forEach((lane, i) => {
      const y = AXIS_H + i * LANE_H;
      const name = el("text", {x: 4, y: y + LANE_H / 2 + 4, class: "tl-lane-label" + (lane.corrected ? " tl-corrected" : "")}, svg,
        lane.readings.length ? `read on the footage as ${lane.readings.join(", ")}` : "");
      name.textContent = lane.camera.length > 16 ? lane.camera.slice(0, 15) + "…" : lane.camera;
      el("line", {x1: LABEL_W, x2: width - PAD, y1: y + LANE_H, y2: y + LANE_H, class: "tl-lane-line"}, svg);
      for (const g of lane.gaps) {
        const a = parse(g.start), b = parse(g.end);
        if (b < v0 || a > v1) continue;
        el("rect", {x: x(a), y: y + 6, width: Math.max(x(b) - x(a), 1), height: LANE_H - 12, class: "tl-gap"}, plot,
          `gap on ${lane.camera}: ${g.start.slice(0, 19)} – ${g.end.slice(0, 19)} (${Math.round(g.duration_s)} s with no recording)`);
      }
      for (const r of lane.recordings) {
        const a = parse(r.start), b = parse(r.end);
        if (b < v0 || a > v1) continue;
        const bar = el("rect", {x: x(a), y: y + 5, width: Math.max(x(b) - x(a), 2), height: LANE_H - 10,
          class: "tl-rec" + (r.deleted ? " tl-rec-deleted" : ""), "data-sha": r.sha256, tabindex: "0",
          role: "button", "aria-label": recLabel(lane.camera, r)}, plot,
          `${r.name || r.sha256.slice(0, 12)}: ${r.start.slice(0, 19)} – ${r.end.slice(0, 19)}` +
          (r.deleted ? " (recovered from a deleted file)" : "") + " · click to open at that moment");
        bar.addEventListener("click", (ev) => {
          if (drag && drag.moved) return;
          const ms = v0 + ((ev.offsetX - LABEL_W) / plotW) * (v1 - v0);
          open(r.sha256, `t=${Math.max(0, Math.min(r.duration_s, (ms - a) / 1000)).toFixed(1)}`);
        });
        // by keyboard: Enter or Space opens the recording from its start (a click opens it at the moment clicked)
        bar.addEventListener("keydown", (ev) => {
          if (ev.key !== "Enter" && ev.key !== " ") return;
          ev.preventDefault();
          ev.stopPropagation();
          open(r.sha256, "t=0");
        });
        if (focused === r.sha256) bar.focus();
        for (const t of r.cuts_s) {
          const px = x(a + t * 1000);
          el("line", {x1: px, x2: px, y1: y + 2, y2: y + LANE_H - 2, class: "tl-cut"}, plot, `cut at ${t.toFixed(1)} s into ${r.name}`);
        }
        for (const s of r.segments) {
          const sa = a + s.start_s * 1000, sb = a + s.end_s * 1000;
          if (sb < v0 || sa > v1) continue;
          const seg = el("rect", {x: x(sa), y: y + 9, width: Math.max(x(sb) - x(sa), 3), height: LANE_H - 18,
            class: "tl-seg" + (s.state !== "unreviewed" ? " tl-seg-done" : "") + (s.score >= 0.8 ? " tl-seg-high" : ""),
            "data-seg": s.id}, plot, `flagged segment, score ${s.score} (${s.state}) in ${r.name} at ${s.start_s.toFixed(1)} s · click to review`);
          seg.addEventListener("click", (ev) => {
            ev.stopPropagation();
            if (drag && drag.moved) return;
            open(r.sha256, `seg=${s.id}&t=${s.start_s}`);
          });
        }
      }
    });
    const range = document.getElementById("tl-range");
    if (range) range.textContent = `${label(v0, 1000)} – ${label(v1, 1000)}`;
  }

  box.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const plotW = Math.max(box.clientWidth, 480) - LABEL_W - PAD;
    const at = v0 + ((ev.offsetX - LABEL_W) / plotW) * (v1 - v0);
    zoom(ev.deltaY > 0 ? 1.25 : 0.8, ev.offsetX > LABEL_W ? at : undefined);
  }, {passive: false});
  box.addEventListener("mousedown", (ev) => { drag = {x: ev.clientX, v0, v1, moved: false}; });
  window.addEventListener("mousemove", (ev) => {
    if (!drag || !(ev.buttons & 1)) return;
    const dx = ev.clientX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    if (!drag.moved) return;
    const plotW = Math.max(box.clientWidth, 480) - LABEL_W - PAD;
    const d = (dx / plotW) * (drag.v1 - drag.v0);
    v0 = drag.v0 - d;
    v1 = drag.v1 - d;
    draw();
  });
  window.addEventListener("mouseup", () => { setTimeout(() => { drag = null; }, 0); });
  box.addEventListener("keydown", (ev) => {
    const keys = {"+": () => zoom(0.5), "=": () => zoom(0.5), "-": () => zoom(2), "_": () => zoom(2),
      "0": fit, ArrowLeft: () => pan(-0.2), ArrowRight: () => pan(0.2)};
    if (keys[ev.key]) {
      ev.preventDefault();
      ev.stopPropagation();
      keys[ev.key]();
    }
  });
  document.getElementById("tl-zoom-in").addEventListener("click", () => zoom(0.5));
  document.getElementById("tl-zoom-out").addEventListener("click", () => zoom(2));
  document.getElementById("tl-fit").addEventListener("click", fit);
  window.addEventListener("resize", draw);

  fetch(root.dataset.api, {headers: {Accept: "application/json"}, credentials: "same-origin"})
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`the timeline could not be loaded (${r.status})`))))
    .then((doc) => {
      data = doc;
      const starts = [], ends = [];
      for (const c of doc.cameras) for (const r of c.recordings) { starts.push(parse(r.start)); ends.push(parse(r.end)); }
      if (!starts.length) {
        box.textContent = "No recording in this case has a clock time yet.";
        return;
      }
      full0 = starts.reduce((a, b) => Math.min(a, b));
      full1 = ends.reduce((a, b) => Math.max(a, b));
      box.dataset.ready = "1";
      fit();
    })
    .catch((e) => { box.textContent = String(e.message || e); });
})();
