"""Contact sheets for the report, decoded in one pass through each file.

``media.thumbs.contact_sheet`` opens the file and seeks once per frame (right for one thumbnail in the review
app); a report needs every clip's sheet, and on short CCTV clips reopening and seeking back to a keyframe for
each of 8 frames cost 1.25 s a clip. Here one container is opened per file and decoding moves forward only:
frames near each other are decoded once, far ones are reached by a forward seek. Same limits as the thumbnails
(frame size, decoder threads, the process-wide decode semaphore); a file that fails gets the thumbnails' way.
"""

from __future__ import annotations

import av
from PIL import Image

from custodes.media import thumbs
from custodes.media.source import MediaRef, av_source, open_source

SEEK_AHEAD_S = 4.0  # a target further than this ahead is reached by seeking, nearer by decoding on


def _frames(path: MediaRef, times: list[float], width: int) -> list[tuple[float, Image.Image]]:
    out: list[tuple[float, Image.Image]] = []
    with open_source(av_source(path)) as c:
        if (stream := thumbs.picture_stream(c)) is None:
            return out
        vs, tb = stream
        pending = sorted(times)
        last = -1.0
        while pending:
            t = pending[0]
            if t - last > SEEK_AHEAD_S:
                c.seek(int(max(0.0, t) / tb), stream=vs, backward=True)
            got = False
            for frame in c.decode(vs):
                ft = frame.time if frame.time is not None else t
                last = ft
                if ft >= t - 0.05:
                    if (img := thumbs.scaled(frame, width)) is None:
                        return out
                    while pending and pending[0] <= ft + 0.05:
                        out.append((pending.pop(0), img))
                    got = True
                    break
            if not got:  # the file ends before the target: no more frames to show
                break
    return out


def contact_sheet(path: MediaRef, duration: float, n: int = 8, cols: int = 4, width: int = 180) -> Image.Image | None:
    """``n`` frames spread over the video in a grid, each stamped with its position in the file."""
    times = [duration * (i + 0.5) / n for i in range(n)] if duration > 0 else [0.0]
    try:
        with thumbs._decodes:
            frames = _frames(path, times, width)
    except (av.error.FFmpegError, OSError, EOFError, ValueError):
        return thumbs.contact_sheet(path, duration, n=n, cols=cols, width=width)
    return thumbs.tile(frames, cols, width)
