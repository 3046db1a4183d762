"""Pose landmarks for a stream of frames; runs in the isolated pose environment, not in Custodes' own.

MediaPipe 0.10.21 (legacy ``solutions.pose``, the full landmark model that ships inside its wheel)
needs numpy<2, which the rest of Custodes does not use; so this file imports nothing from Custodes and
is started as a subprocess with the pose environment's Python (``make pose``).

Protocol, all on stdin/stdout:
  in:  one JSON line {"width": W, "height": H}, then per frame 8 bytes (float64 time, little-endian)
       followed by W*H*3 bytes of RGB
  out: per frame one JSON line {"t": time, "lm": [[x, y, z, visibility] * 33] or null}
"""

import json
import struct
import sys


def main() -> int:
    import mediapipe as mp
    import numpy as np

    head = json.loads(sys.stdin.buffer.readline())
    w, h = int(head["width"]), int(head["height"])
    size = w * h * 3
    pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                  min_detection_confidence=0.4, min_tracking_confidence=0.4)
    out = sys.stdout
    while True:
        tb = sys.stdin.buffer.read(8)
        if len(tb) < 8:
            break
        (t,) = struct.unpack("<d", tb)
        buf = sys.stdin.buffer.read(size)
        if len(buf) < size:
            break
        img = np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
        res = pose.process(img)
        lm = None
        if res.pose_landmarks is not None:
            lm = [[round(p.x, 4), round(p.y, 4), round(p.z, 4), round(p.visibility, 3)]
                  for p in res.pose_landmarks.landmark]
        out.write(json.dumps({"t": t, "lm": lm}) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
