"""Run one triage stage on one file in this process and print its cost as JSON (used by run.py)."""

import json
import resource
import sys
import time
from pathlib import Path

import cv2

stage, path = sys.argv[1], Path(sys.argv[2])
cv2.setNumThreads(1)
t0 = time.perf_counter()
r0 = resource.getrusage(resource.RUSAGE_SELF)
out: dict = {"stage": stage}
if stage in ("plain_decode", "plain_decode_1thread"):
    import av

    n = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        if stage == "plain_decode":
            vs.thread_type = "AUTO"
        else:
            vs.codec_context.thread_count = 1
        for _ in c.decode(vs):
            n += 1
    out["frames"] = n
elif stage == "motion_vectors":
    # what a pass over H.264 motion vectors would cost: FFmpeg exports them only from a full decode
    import av

    n = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        vs.codec_context.options = {"flags2": "+export_mvs"}
        for frame in c.decode(vs):
            mvs = frame.side_data.get("MOTION_VECTORS")
            n += 0 if mvs is None else len(mvs.to_ndarray())
    out["vectors"] = n
elif stage == "fast_pass":
    from custodes.media.decode import audio_envelope, packet_timeline
    from custodes.triage.score import candidate_spans

    pt = packet_timeline(path)
    env = audio_envelope(path)
    spans = candidate_spans(pt.duration_s, pt.video_bytes_per_s, env.rms_db if env else None, 0.5)
    out["candidate_s"] = round(sum(b - a for a, b in spans), 1)
elif stage == "full":
    from custodes.triage.score import analyze_video

    r = analyze_video(path)
    out.update(ok=r.ok, analysed_s=round(r.analysed_s, 1), peak=round(r.peak, 3),
               top=[(s.start_s, s.end_s, s.score) for s in sorted(r.segments, key=lambda s: -s.score)[:12]])
r1 = resource.getrusage(resource.RUSAGE_SELF)
out.update(wall_s=round(time.perf_counter() - t0, 2),
           cpu_s=round((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), 2),
           peak_rss_mb=round(r1.ru_maxrss / 1024, 1))
print(json.dumps(out))
