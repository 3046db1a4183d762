"""Burnt-in overlay text: camera / device ID and the on-screen clock.

File names and container dates of leaked footage are unreliable; the text a
body camera prints into every frame is usually the best clock there is.
Text is located once per video with RapidOCR (PP-OCR detection + recognition,
ONNX models inside the ``rapidocr-onnxruntime`` wheel), then only the text
boxes are re-read (recognition alone, all frames in one batch) on a handful of
frames spread over the video. Tesseract's
Russian model reads the boxes as well only where the first frame holds Russian
words (not Latin ones it reads as Cyrillic look-alikes): it was 80 % of the time. Each reading
of the clock gives an estimate of when the recording started (clock minus
position in the video); the median of those estimates is the answer, and the
share of readings within 1 s of it is the confidence — a clock advances, so a
misread digit shows up as an outlier, not as a wrong answer.
"""

from __future__ import annotations

import functools
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import av
import numpy as np

from custodes.media.source import MediaRef, av_source

# overlay-2: tesseract only for overlays with Russian words, scene clutter not re-read, recognition in one batch
VERSION = "overlay-2"
SAMPLES = 8
MAX_BOXES = 8  # text boxes read on every frame

# Cyrillic letters that look like Latin ones, as OCR and overlay fonts mix them up.
_LOOKALIKE = str.maketrans({
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "К": "K", "М": "M", "О": "O", "Р": "P", "Т": "T",
    "Х": "X", "У": "Y", "а": "a", "с": "c", "е": "e", "о": "o", "р": "p", "х": "x", "у": "y", "к": "k",
})
_DIGITLIKE = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "i": "1",
                            "Z": "2", "S": "5", "s": "5", "B": "8", "G": "6", "T": "7"})

CAMERA_RE = re.compile(r"\b((?:CAM|CAMERA|KAM|KAMERA|BWC|CH|DEV|ID)[\s_\-#:]*[A-Z0-9][A-Z0-9\-_]{0,15})\b", re.I)
_D = r"[0-9OolIiSBZDQGT|]"
DATETIME_PATTERNS = [
    # 2026-03-14 02:01:00, 2026/03/14 02:01:00, 2026-03-1402:01:00 (space lost by OCR)
    (re.compile(rf"({_D}{{4}})[-/.]({_D}{{2}})[-/.]({_D}{{2}})\s*[T ]?\s*({_D}{{2}})[:.]({_D}{{2}})[:.]({_D}{{2}})"),
     "ymd"),
    # 14.03.2026 02:01:00, 14/03/2026 02:01:00
    (re.compile(rf"({_D}{{2}})[-/.]({_D}{{2}})[-/.]({_D}{{4}})\s*({_D}{{2}})[:.]({_D}{{2}})[:.]({_D}{{2}})"), "dmy"),
]


def normalise(text: str) -> str:
    return text.translate(_LOOKALIKE)


def parse_clock(text: str) -> datetime | None:
    t = normalise(text)
    for rx, order in DATETIME_PATTERNS:
        m = rx.search(t)
        if not m:
            continue
        parts = [int(g.translate(_DIGITLIKE)) for g in m.groups()]
        if order == "dmy":
            parts = [parts[2], parts[1], parts[0], *parts[3:]]
        try:
            return datetime(*parts)  # type: ignore[arg-type]
        except ValueError:
            continue
    return None


def parse_camera(text: str) -> str | None:
    # Russian overlays write "Камера 3" / "КАМ-3": transliterate the word before mapping look-alikes;
    # a Latin-only recogniser reads КАМЕРА as the look-alike KAMEPA
    t = normalise(text.upper().replace("КАМЕРА", "CAM").replace("КАМ", "CAM"))
    t = re.sub(r"\bKAMEPA", "CAM", t)
    for rx, _ in DATETIME_PATTERNS:
        t = rx.sub(" ", t)
    m = CAMERA_RE.search(t)
    if not m:
        return None
    ident = re.sub(r"[\s_#:]+", "-", m.group(1).strip()).strip("-")
    ident = re.sub(r"^(CAMERA|KAMERA|KAM)", "CAM", ident)
    if "-" not in ident:  # CAM01 -> CAM-01
        ident = re.sub(r"^([A-Z]+)(\d)", r"\1-\2", ident)
    return ident


@dataclass
class OverlayReading:
    t: float  # seconds into the video
    text: str
    clock: datetime | None
    camera: str | None


@dataclass
class OverlayResult:
    camera_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    confidence: float = 0.0  # share of clock readings within 1 s of the consensus
    readings: list[OverlayReading] = field(default_factory=list)
    error: str = ""
    regions: Any = None  # TextRegions where the text was found (not stored: edits reads it again)

    def as_dict(self) -> dict[str, Any]:
        return {"camera_id": self.camera_id, "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None, "confidence": round(self.confidence, 3),
                "readings": [{"t": round(r.t, 2), "text": r.text, "clock": r.clock.isoformat() if r.clock else None,
                              "camera": r.camera} for r in self.readings], "error": self.error}


@functools.lru_cache(maxsize=1)
def tesseract_available() -> bool:
    import shutil
    import subprocess

    if shutil.which("tesseract") is None:
        return False
    out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True)
    return "rus" in out.stdout.split()


def tesseract_line(crop: np.ndarray) -> str:
    """One line of text from a crop with tesseract rus+eng (Debian tesseract-ocr-rus)."""
    import subprocess

    import cv2

    big = cv2.resize(crop, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    if not ok:
        return ""
    out = subprocess.run(["tesseract", "stdin", "stdout", "-l", "rus+eng", "--psm", "7"], input=png.tobytes(),
                         capture_output=True, timeout=30)
    return out.stdout.decode("utf-8", "replace").strip()


def tesseract_lines(crops: list[np.ndarray]) -> str:
    """Several crops read by one tesseract run (stacked, one per line): a run costs about a second, mostly
    loading the models, however many lines it reads."""
    import cv2

    if not crops:
        return ""
    if len(crops) == 1:
        return tesseract_line(crops[0])
    w = max(c.shape[1] for c in crops)
    rows = [cv2.copyMakeBorder(c, 4, 4, 0, w - c.shape[1], cv2.BORDER_REPLICATE) for c in crops]
    stacked = np.ascontiguousarray(np.concatenate(rows, axis=0))
    import subprocess

    big = cv2.resize(stacked, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    if not ok:
        return ""
    out = subprocess.run(["tesseract", "stdin", "stdout", "-l", "rus+eng", "--psm", "6"], input=png.tobytes(),
                         capture_output=True, timeout=30)
    return "  ".join(line.strip() for line in out.stdout.decode("utf-8", "replace").splitlines() if line.strip())


def _overlay_like(text: str) -> bool:
    """Text an overlay prints: a clock or date (digits), a camera word."""
    return sum(ch.isdigit() for ch in text) >= 2 or parse_camera(text) is not None


def _best_reading(candidates: list[str]) -> str:
    """The first reading that yields both camera and clock, else the first with a clock."""
    for c in candidates:
        if parse_clock(c) and parse_camera(c):
            return c
    for c in candidates:
        if parse_clock(c):
            return c
    return next((c for c in candidates if c), "")


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)


def _frames_at(path: MediaRef, times: list[float]) -> list[tuple[float, np.ndarray]]:
    out = []
    with av.open(av_source(path)) as c:
        vs = c.streams.video[0]
        tb = float(vs.time_base or 0) or 1e-6
        for want in times:
            c.seek(int(want / tb), stream=vs, backward=True)
            try:
                for frame in c.decode(vs):
                    if frame.time is not None and frame.time >= want - 1e-3:
                        out.append((float(frame.time), frame.to_ndarray(format="rgb24")))
                        break
            except (av.error.FFmpegError, EOFError):
                continue
    return out


def _boxes(result: list[Any] | None) -> list[tuple[list[list[float]], str, float]]:
    return [(r[0], str(r[1]), float(r[2])) for r in (result or [])]


# a Cyrillic word that is only Latin look-alikes of these is a Latin overlay read by the Russian model ("САМ-01")
_LATIN_WORDS = {"CAM", "CAMERA", "CH", "ID", "DEV", "BWC"}
_LATIN_CAMERA = re.compile(r"(?<![A-Z])(CAM|CAMERA|CH|DEV|BWC)(?![A-Z])")


def samples_for(duration_s: float) -> int:
    """Frames read for the start estimate and the camera's name: readings spread over the video at different
    sub-second phases of the clock tighten the start, and the camera's name is their most common reading (with
    4 frames on a two-second clip, 'CAMERA03' misread as 'CAMLRA03' twice of four won; recognition is the cheap
    part, so every video gets all 8)."""
    return SAMPLES


def _russian(text: str) -> bool:
    """Cyrillic words in a tesseract reading that are not merely Latin look-alikes of a Latin overlay's words."""
    for word in re.findall(r"[А-Яа-яЁё]+", text):
        if len(word) >= 2 and normalise(word).upper() not in _LATIN_WORDS:
            return True
    return False


@dataclass
class TextRegions:
    """Where a video's overlay text is (boxes as (y0, y1, x0, x1), reading order) and how to read it."""

    boxes: list[tuple[int, int, int, int]]
    tesseract: bool = False
    first_tesseract: str = ""  # tesseract's reading of the frame the boxes were found on


def locate(frames: list[tuple[float, np.ndarray]]) -> TextRegions | None:
    """Find the overlay's text boxes on the first of ``frames`` (up to three tried) that has any."""
    engine = _engine()
    regions: list[tuple[int, int, int, int]] = []
    found_on = None
    latin = ""
    for _, img in frames[:3]:
        found = _boxes(engine(img)[0])
        if found:
            h, w = img.shape[:2]
            # a scene's clutter (signs, posters, noise) gives boxes too: keep the overlay's (digits, a camera
            # word), else any; at most the MAX_BOXES surest
            found = sorted([f for f in found if _overlay_like(f[1])] or found, key=lambda f: -f[2])[:MAX_BOXES]
            latin = "  ".join(text for _, text, _ in found)
            for box, _, _ in found:
                xs, ys = [p[0] for p in box], [p[1] for p in box]
                pad = 4
                regions.append((max(0, int(min(ys)) - pad), min(h, int(max(ys)) + pad),
                                max(0, int(min(xs)) - pad), min(w, int(max(xs)) + pad)))
            found_on = img
            break
    if not regions or found_on is None:
        return None
    regions.sort(key=lambda r: (r[0] // 10, r[2]))  # reading order: rows, then left to right
    out = TextRegions(regions)
    # RapidOCR's model reads Latin and digits; when the overlay has Cyrillic (tesseract's Russian model finds
    # Cyrillic words on the first frame that are not just look-alikes of Latin ones), tesseract reads it too. A
    # Latin overlay's camera word read as Latin by RapidOCR needs no second opinion (tesseract costs a second a
    # frame)
    if tesseract_available() and not _LATIN_CAMERA.search(latin.upper()):
        out.first_tesseract = tesseract_lines([found_on[y0:y1, x0:x1] for y0, y1, x0, x1 in regions][:4])
        # and only where that reading is of use: a camera or a clock (tesseract reads a scene's clutter as
        # Cyrillic too, a second a box, for nothing)
        t = out.first_tesseract
        out.tesseract = _russian(t) and (parse_camera(t) is not None or parse_clock(t) is not None)
    return out


def read_text(frames: list[tuple[float, np.ndarray]], regions: TextRegions,
              tesseract: bool | None = None) -> list[OverlayReading]:
    """One reading per frame of the known boxes: recognition only, every frame's crops in one batch; tesseract
    as well where ``regions`` says (``tesseract=False``: never, e.g. for the clock alone, whose digits are Latin)."""
    use_tesseract = regions.tesseract if tesseract is None else tesseract and regions.tesseract
    crops = [[img[y0:y1, x0:x1] for y0, y1, x0, x1 in regions.boxes] for _, img in frames]
    flat = [c for cs in crops for c in cs]
    rec_res, _ = _engine().text_rec(flat) if flat else ([], None)
    rec = list(rec_res or [])
    out = []
    k = len(regions.boxes)
    for i, (t, _) in enumerate(frames):
        candidates = ["  ".join(str(item[0]) for item in rec[i * k:(i + 1) * k])]
        if use_tesseract:
            candidates.insert(0, tesseract_lines(crops[i]))
        line = _best_reading(candidates)
        out.append(OverlayReading(t, line, parse_clock(line), parse_camera(line)))
    return out


def read_overlay(path: MediaRef, duration_s: float, samples: int | None = None) -> OverlayResult:
    res = OverlayResult()
    if duration_s <= 0:
        res.error = "unknown duration"
        return res
    samples = samples or samples_for(duration_s)
    times = sorted({round(min(duration_s - 0.5, max(0.0, duration_s * k / (samples - 1))), 2)
                    for k in range(samples)} | {0.0})
    frames = _frames_at(path, [t for t in times if t >= 0])
    if not frames:
        res.error = "no decodable frames"
        return res
    # locate text on the first frame that has any; read only those boxes elsewhere
    regions = locate(frames)
    if regions is None:
        res.error = "no overlay text found"
        return res
    res.regions = regions
    res.readings = read_text(frames, regions)
    epoch = datetime(1970, 1, 1)
    # each reading bounds the start from below: the clock shows whole seconds, so clock − t lies in
    # (start − 1 s, start]; the largest estimate that agrees with the consensus is the tightest
    starts = sorted((r.clock - epoch).total_seconds() - r.t for r in res.readings if r.clock)
    cams = [r.camera for r in res.readings if r.camera]
    if cams:
        res.camera_id = statistics.mode(cams)
    if starts:
        med = starts[len(starts) // 2]
        inliers = [x for x in starts if abs(x - med) <= 1.0]
        res.confidence = len(inliers) / len(res.readings)
        res.start = epoch + timedelta(seconds=round(max(inliers), 3))
        res.end = res.start + timedelta(seconds=duration_s)
    elif not res.error:
        res.error = "overlay text has no readable clock"
    return res
