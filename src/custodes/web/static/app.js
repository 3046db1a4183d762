// Review workspace behaviour: safe viewing toggle, segment jumps, keyboard shortcuts, break reminder.
(function () {
  "use strict";
  const REMINDER_MS = 45 * 60 * 1000;
  const started = Number(sessionStorage.getItem("custodes-started") || Date.now());
  sessionStorage.setItem("custodes-started", String(started));
  const reminder = document.getElementById("break-reminder");
  if (reminder) {
    const show = () => { reminder.hidden = false; };
    const left = REMINDER_MS - (Date.now() - started);
    if (left <= 0) show(); else setTimeout(show, left);
  }
  // segment marks: positioned from data attributes (the CSP forbids inline style attributes)
  document.querySelectorAll("#segment-track .mark").forEach(m => {
    m.style.left = m.dataset.left + "%";
    m.style.width = m.dataset.width + "%";
  });
  const video = document.getElementById("player");
  if (!video) return;
  const box = document.getElementById("player-box");
  const unblur = document.getElementById("unblur");
  const segs = Array.from(document.querySelectorAll("a.seek.seg")).map(a => Number(a.dataset.t));
  const seek = t => { video.currentTime = t; };
  video.addEventListener("loadedmetadata", () => { const t = Number(video.dataset.start || 0); if (t) seek(t); });
  unblur.addEventListener("click", () => {
    const safe = box.classList.toggle("safe");
    video.muted = safe;
    unblur.textContent = safe ? "Unblur and show colour" : "Blur";
  });
  document.querySelectorAll("a.seek").forEach(a => a.addEventListener("click", e => {
    e.preventDefault(); seek(Number(a.dataset.t));
  }));
  const nextSegment = () => {
    const t = segs.find(s => s > video.currentTime + 0.5);
    if (t !== undefined) seek(t); else if (segs.length) seek(segs[0]);
  };
  document.getElementById("next-segment").addEventListener("click", nextSegment);
  let marking = false;
  const mark = () => {
    const start = document.getElementById("start_s"), end = document.getElementById("end_s");
    if (!start || !end) return;
    const t = Math.round(video.currentTime * 10) / 10;
    if (!marking) { start.value = t; end.value = t; } else { end.value = Math.max(t, Number(start.value)); }
    marking = !marking;
  };
  document.getElementById("mark").addEventListener("click", mark);
  document.addEventListener("keydown", e => {
    if (["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)) return;
    if (e.key === " ") { e.preventDefault(); if (video.paused) video.play(); else video.pause(); }
    else if (e.key === "n") nextSegment();
    else if (e.key === "m") mark();
  });
})();
