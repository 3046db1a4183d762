"""Face redaction recall on real faces composited into real CCTV (fight-surv backgrounds)."""

from __future__ import annotations

import time
from pathlib import Path

from custodes.redact.faces import redact_video
from custodes.redact.testclips import composite_face_clip, covered


def run(work: Path, data: Path, clips: int = 8) -> dict:
    backgrounds = sorted((data / "noFight").glob("*.mp4"))[:: max(1, 150 // clips)][:clips]
    total = hit = 0
    worst: tuple[float, str, int] = (1.0, "", -1)
    t0 = time.perf_counter()
    frames = 0
    for k, bg in enumerate(backgrounds):
        clip = work / f"faces_{k}.mp4"
        truth = composite_face_clip(bg, clip, frames=45, speed=8 + k * 2, start_size=24 + k * 4)
        res = redact_video(clip, work / f"faces_{k}_red.mp4", keep_masks=True)
        frames += res.frames
        hits = [covered(m, b) for m, b in zip(res.masks, truth, strict=False)]
        total += len(hits)
        hit += sum(hits)
        clip_recall = sum(hits) / max(len(hits), 1)
        if clip_recall < worst[0]:
            misses = [i for i, h in enumerate(hits) if not h]
            worst = (clip_recall, bg.name, misses[0] if misses else -1)
    return {"bench": "face redaction recall (astronaut face over fight-surv CCTV, 24–110 px, moving)",
            "face_frames": total, "recall": round(hit / max(total, 1), 4),
            "worst_clip": {"background": worst[1], "recall": round(worst[0], 4), "first_missed_frame": worst[2]},
            "frames_per_s": round(frames / (time.perf_counter() - t0), 1), "target": "recall >= 0.98"}
