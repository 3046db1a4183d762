"""Scene cuts: camera switches, edits, jumps in time — in an archive of "unedited" recordings, an edit is itself
evidence.

Two passes find them. The fast pass decodes keyframes only, over the whole video (``media.decode.keyframe_cuts``):
a cut shows as a keyframe unlike the one before it. That misses a splice in and back out between two keyframes
(both show the same scene), and cuts that change the picture less than this video's keyframes usually change (an
edit alternating between two cameras raises what is usual), and it dates a cut spliced in between keyframes only to
the interval between them (one to several seconds).

The full pass decodes every frame of the candidate spans, and ``motion`` measures each frame pair's mean grey-level
difference and how alike the two frames' layouts are (thumbnail correlation); there a cut is one pair whose frames
differ and whose layouts do not correlate, between pairs that do. Motion, even a struggle close to the camera,
leaves the scene's layout in place, and a camera swung round changes it over several pairs, not one. On the 300
real fight-surv clips it finds the one cut (a compilation switching from CAM 01 to CAM 02 mid-fight) and false cuts
in one other clip (four in 3 s, as limbs swung into the lens fill half the frame, blown out white, for a frame
each); none in the 150 clips without a fight. The full pass runs only on candidate spans of long videos: a splice
into calm footage costs the encoder a burst of bits, but not always enough to make a span (2 of 5 spliced seconds
in a synthetic test), so such splices mostly stay invisible there.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

VERSION = "cuts-2"
# a cut changes the picture: a frame pair's mean grey-level difference (at motion.SIZE) of at least 0.04 of the
# grey range (the keyframe pass's threshold) ...
CUT_DIFF = 10.0
# ... and its layout: the two frames' thumbnails correlate at most this much (motion.layout_similarity; the
# synthetic edit's cuts 0.10-0.33, fights in fixed cameras' footage rarely under 0.7) ...
CUT_SIMILARITY = 0.5
# ... abruptly: the pairs either side are this much more alike (a camera swung round, or a blur of limbs
# filling the frame, stays unlike over several pairs). Not a ratio of grey-level differences: footage whose
# frames repeat (10 fps sent as 30) changes only every third pair, and every change would stand out
ABRUPT = 0.25


def between_frames(times: Sequence[float], diffs: Sequence[float], similarity: Sequence[float]) -> list[float]:
    """Times of the first frame after each cut in a run of consecutive frame pairs: ``times[i]`` is the time of
    pair i's second frame, ``diffs[i]`` its mean grey-level difference and ``similarity[i]`` how alike the two
    frames' layouts are."""
    cuts = []
    for i, (d, s) in enumerate(zip(diffs, similarity, strict=True)):
        if d < CUT_DIFF or s > CUT_SIMILARITY:
            continue
        beside = [similarity[j] for j in (i - 1, i + 1) if 0 <= j < len(similarity)]
        if beside and min(beside) >= s + ABRUPT:
            cuts.append(round(float(times[i]), 2))
    return cuts


def found_by(data: dict[str, Any] | None) -> str:
    """Which pass found a stored cut (a ``scene_cut`` signal's data). Cuts stored by ``cuts-1`` say nothing: that
    version had the keyframe pass only."""
    return str((data or {}).get("found_by", "keyframes"))


def merge(keyframe_cuts: Sequence[float], frame_cuts: Sequence[float],
          keyframes: Sequence[float]) -> list[tuple[float, str]]:
    """(time, found by) for each cut, once. A keyframe cut says the picture changed somewhere after the keyframe
    before it; a cut found between frames in that interval is the same cut, dated to the frame."""
    keys = sorted(keyframes)
    explained = set()
    out = [(t, "frames") for t in sorted(set(frame_cuts))]
    for k in keyframe_cuts:
        j = bisect.bisect_right(keys, k + 0.01) - 1  # the keyframe k stands for (times are rounded)
        before = keys[j - 1] if j > 0 else float("-inf")
        if any(before < t <= k + 0.01 for t in frame_cuts):
            explained.add(k)
    out += [(k, "keyframes") for k in keyframe_cuts if k not in explained]
    return sorted(out)
