"""Real faces composited into real footage, with their true positions: for redaction tests and
benchmarks. The face is skimage's ``astronaut`` (a NASA portrait in the public domain)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np


def composite_face_clip(background: Path, out: Path, frames: int = 30, speed: int = 12,
                        start_size: int = 40) -> list[tuple[int, int, int, int]]:
    """A real face (skimage's astronaut) moving and growing over real CCTV; returns its true boxes."""
    face = _astronaut()[30:230, 130:300]
    truth = []
    with av.open(str(background)) as c, av.open(str(out), "w") as o:
        v = c.streams.video[0]
        w, h = 640, 360
        vs = o.add_stream("libx264", rate=v.average_rate or 25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for i, f in enumerate(c.decode(v)):
            if i >= frames:
                break
            img = cv2.resize(f.to_ndarray(format="rgb24"), (w, h))
            size = start_size + i * 2
            fc = cv2.resize(face, (size, int(size * 1.18)))
            x, y = 30 + (i * speed) % 400, 60 + (i * 3) % 100
            img[y:y + fc.shape[0], x:x + fc.shape[1]] = fc
            # the face itself inside the 170x200 crop (CenterFace on the full astronaut image finds it at
            # x 181–270, y 58–178, i.e. 51–140, 28–148 in the crop): hair and shoulders need not be hidden
            sx, sy = fc.shape[1] / 170, fc.shape[0] / 200
            truth.append((x + int(51 * sx), y + int(28 * sy), x + int(140 * sx), y + int(148 * sy)))
            for p in vs.encode(av.VideoFrame.from_ndarray(np.asarray(img, dtype=np.uint8), format="rgb24")):
                o.mux(p)
        for p in vs.encode():
            o.mux(p)
    return truth


def _astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def covered(mask_boxes: list[tuple[int, int, int, int]], box: tuple[int, int, int, int], need: float = 0.9) -> bool:
    x1, y1, x2, y2 = box
    m = np.zeros((y2 - y1, x2 - x1), bool)
    for a, b, c, d in mask_boxes:
        m[max(0, b - y1):max(0, d - y1), max(0, a - x1):max(0, c - x1)] = True
    return m.mean() >= need



def box_mask(boxes: list[tuple[int, int, int, int]], w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    for x1, y1, x2, y2 in boxes:
        m[max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    return m


def mask_figures(masks: list[np.ndarray], truth: list[tuple[int, int, int, int]], need: float = 0.9) -> dict:
    """The figures a redaction is judged by, from per-frame masks (bool, frame-sized) and the true face boxes:
    frames whose face is less than ``need`` covered, the masked area outside the face as a multiple of the
    face's own area, and the fraction of the frame masked (all frames together)."""
    under, outside, face_area, masked, frame_area = 0, 0, 0, 0, 0
    for m, (x1, y1, x2, y2) in zip(masks, truth, strict=True):
        h, w = m.shape
        fx1, fy1, fx2, fy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        face = m[fy1:fy2, fx1:fx2]
        area = (fx2 - fx1) * (fy2 - fy1)
        if area <= 0:
            continue
        if face.mean() < need:
            under += 1
        total = int(m.sum())
        outside += total - int(face.sum())
        face_area += area
        masked += total
        frame_area += w * h
    return {"frames": len(truth), "faces_under_90pct": under,
            "outside_over_face_area": round(outside / max(face_area, 1), 2),
            "frame_fraction_masked": round(masked / max(frame_area, 1), 4)}
