"""CNN on motion cell grids: grouped-CV sweep. Jobs (config, rep, seed) in parallel processes on one GPU."""
import os, sys, json, time, pickle, itertools, numpy as np, torch, torch.nn as nn
import torch.multiprocessing as mp
from sklearn.model_selection import StratifiedGroupKFold
HERE = os.path.dirname(os.path.abspath(__file__))
def load():
    d = np.load(os.path.join(HERE, "cells.npz"))
    return d["cells"], d["lens"], d["y"], d["g"]
class Net(nn.Module):
    def __init__(s, ch, drop, k=3):
        super().__init__()
        s.f = nn.Sequential(nn.Conv3d(5, ch, k, padding=k // 2), nn.ReLU(), nn.MaxPool3d((1, 2, 2)),
                            nn.Conv3d(ch, 2 * ch, 3, padding=1), nn.ReLU(), nn.MaxPool3d((2, 2, 2)),
                            nn.Conv3d(2 * ch, 2 * ch, 3, padding=1), nn.ReLU())
        s.d = nn.Dropout(drop); s.o = nn.Linear(4 * ch, 1)
    def forward(s, x):
        h = s.f(x)
        return s.o(s.d(torch.cat([h.amax((2, 3, 4)), h.mean((2, 3, 4))], 1))).squeeze(1)
def run_job(job):
    cfg, rep, seed, dev = job
    torch.set_num_threads(1)
    cells, lens, y, g = load()
    X = torch.from_numpy(cells.astype(np.float32)).to(dev)  # (N, 5, Tmax, H, W), normalised
    Lt = torch.from_numpy(lens).to(dev)
    yt = torch.from_numpy(y.astype(np.float32)).to(dev)
    spl = list(StratifiedGroupKFold(5, shuffle=True, random_state=rep).split(np.zeros(len(y)), y, g))
    pred = np.zeros(len(y))
    sx = torch.tensor([-1, 1, 1, 1, 1.], device=dev).view(1, 5, 1, 1, 1)
    sxy = torch.tensor([-1, -1, 1, 1, 1.], device=dev).view(1, 5, 1, 1, 1)
    for fi, (tr, te) in enumerate(spl):
        torch.manual_seed(seed * 1000 + rep * 10 + fi); gen = torch.Generator(device=dev); gen.manual_seed(seed * 1000 + rep * 10 + fi)
        m = Net(cfg["ch"], cfg["drop"], cfg.get("k", 3)).to(dev)
        opt = torch.optim.AdamW(m.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
        bs = 16; nb = int(np.ceil(len(tr) / bs)); steps = cfg["epochs"] * nb
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg["lr"], total_steps=steps)
        trt = torch.from_numpy(tr).to(dev); L = cfg["L"]; ar = torch.arange(L, device=dev)
        lossf = nn.BCEWithLogitsLoss()
        for ep in range(cfg["epochs"]):
            m.train(); order = trt[torch.randperm(len(tr), generator=gen, device=dev)]
            for i in range(nb):
                b = order[i * bs:(i + 1) * bs]; lb = Lt[b]
                s = (torch.rand(len(b), generator=gen, device=dev) * torch.clamp(lb - L + 1, min=1)).long()
                idx = (s[:, None] + ar[None]) % lb[:, None]  # (B, L), wraps clips shorter than L
                xb = X[b[:, None], :, idx]  # (B, L, 5, H, W)
                xb = xb.permute(0, 2, 1, 3, 4)
                f1 = torch.rand(len(b), generator=gen, device=dev) < 0.5
                xb = torch.where(f1.view(-1, 1, 1, 1, 1), xb.flip(4) * sx, xb)
                if cfg.get("trev", True):
                    f2 = torch.rand(len(b), generator=gen, device=dev) < 0.5
                    xb = torch.where(f2.view(-1, 1, 1, 1, 1), xb.flip(2) * sxy, xb)
                if cfg.get("scale", 0):
                    sc = torch.exp((torch.rand(len(b), generator=gen, device=dev) * 2 - 1) * cfg["scale"]).view(-1, 1, 1, 1, 1)
                    xb = torch.cat([xb[:, :4] + torch.sign(xb[:, :4]) * torch.log(sc), xb[:, 4:]], 1)  # log1p-space shift, roughly
                opt.zero_grad(); lossf(m(xb), yt[b]).backward(); opt.step(); sched.step()
        m.eval()
        with torch.no_grad():
            for j in te:
                n = max(int(lens[j]), 4)
                idx = torch.arange(n, device=dev) % int(lens[j])
                x = X[j][:, idx][None]
                xx = torch.cat([x, x.flip(4) * sx])
                pred[j] = torch.sigmoid(m(xx)).mean().item()
    return cfg["name"], rep, seed, pred
if __name__ == "__main__":
    mp.set_start_method("spawn")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    configs = json.load(open(os.path.join(HERE, sys.argv[1])))
    reps = [int(r) for r in sys.argv[2].split(",")]; seeds = [int(s) for s in sys.argv[3].split(",")]
    nproc = int(sys.argv[4]); out = sys.argv[5]
    jobs = [(c, r, s, dev) for c in configs for r in reps for s in seeds]
    t0 = time.time(); res = []
    with mp.Pool(nproc) as pool:
        for k, r in enumerate(pool.imap_unordered(run_job, jobs)):
            res.append(r); print(k + 1, len(jobs), r[0], r[1], r[2], "%.0fs" % (time.time() - t0), flush=True)
            pickle.dump(res, open(out, "wb"))
