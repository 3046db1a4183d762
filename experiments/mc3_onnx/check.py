"""Compare custodes.analyze.video_net (ONNX, no torch) with torchvision's mc3_18 loaded with the same .pth.

Run (torchvision installed outside .venv, see README.md):
    PYTHONPATH=/tmp/tv .venv/bin/python experiments/mc3_onnx/check.py [N_CLIPS]
"""
from __future__ import annotations

# torchvision 0.29.1 (the one available offline) does not register its C++ ops against torch 2.13, so its
# package __init__ fails; mc3_18 itself is plain Python: load its module through stub parent packages.
import importlib.util
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

_TV = Path(importlib.util.find_spec("torchvision").submodule_search_locations[0])
_STUBS = (("torchvision", ""), ("torchvision.models", "models"), ("torchvision.models.video", "models/video"))
for _name, _sub in _STUBS:
    _m = types.ModuleType(_name)
    _m.__path__ = [str(_TV / _sub) if _sub else str(_TV)]
    sys.modules[_name] = _m
from torchvision.models.video.resnet import mc3_18  # noqa: E402
from torchvision.version import __version__ as TV_VERSION  # noqa: E402

from custodes.analyze import video_net  # noqa: E402

DATA = Path("/work/shared/data/fight-surv")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    torch.set_num_threads(1)
    pth = video_net.default_weights()
    ref = mc3_18(weights=None)
    ref.fc = torch.nn.Linear(512, 2)
    ref.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
    ref.eval()
    fc = ref.fc
    ref.fc = torch.nn.Identity()
    clips = sorted((DATA / "fight").glob("*.mp4"))[: n // 2] + sorted((DATA / "noFight").glob("*.mp4"))[: n - n // 2]
    worst_l = worst_f = 0.0
    for c in clips:
        x = video_net.clip_tensor(video_net.frames_for(c))[None]
        t0 = time.process_time()
        logits, feats = video_net.run(x)
        t_onnx = time.process_time() - t0
        with torch.no_grad():
            f_ref = ref(torch.from_numpy(x))
            l_ref = fc(f_ref)
        dl = float(np.abs(logits - l_ref.numpy()).max())
        df = float(np.abs(feats - f_ref.numpy()).max())
        worst_l, worst_f = max(worst_l, dl), max(worst_f, df)
        print(f"{c.parent.name}/{c.name}: logits onnx {logits[0].round(4)} torch {l_ref.numpy()[0].round(4)} "
              f"max|dlogit| {dl:.2e} max|dfeat| {df:.2e} (|f| {np.linalg.norm(feats):.3f}) onnx cpu {t_onnx:.2f}s")
    # a deterministic synthetic input: the reference the CI test stores
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 16, 112, 112)).astype(np.float32)
    logits, feats = video_net.run(x)
    with torch.no_grad():
        f_ref = ref(torch.from_numpy(x))
        l_ref = fc(f_ref)
    print(f"synthetic rng(0): max|dlogit| {float(np.abs(logits - l_ref.numpy()).max()):.2e} "
          f"max|dfeat| {float(np.abs(feats - f_ref.numpy()).max()):.2e}")
    print(f"WORST over {len(clips)} real clips: max|dlogit| {worst_l:.2e} max|dfeat| {worst_f:.2e}")
    if len(sys.argv) > 2:
        import json
        Path(sys.argv[2]).write_text(json.dumps({
            "input": "np.random.default_rng(0).standard_normal((1, 3, 16, 112, 112)).astype(np.float32)",
            "torch": torch.__version__, "torchvision": TV_VERSION,
            "logits": [float(v) for v in l_ref.numpy()[0]],
            "features_first16": [float(v) for v in f_ref.numpy()[0, :16]],
            "features_l2": float(np.linalg.norm(f_ref.numpy()[0])),
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
