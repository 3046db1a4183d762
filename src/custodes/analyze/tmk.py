"""A video-level fingerprint in the manner of TMK+PDQF (Facebook's Temporal Match Kernel).

Each sampled frame contributes its PDQF vector (PDQ before quantisation, 256 floats) weighted by
cosines and sines of its timestamp at a few periods and harmonics (Poullot et al., "Temporal matching
kernel with explicit feature maps", 2015). The sums form one fixed-size descriptor per video, and two
descriptors can be compared at *any* time offset in closed form: the score for offset δ is a
trigonometric polynomial in δ. Level 1 is the cosine of the plain averages (the whole-video "look");
level 2 is the best score over offsets, which also gives the offset. This is an independent
implementation, not Facebook's code; it reads the same kind of features the frame index stores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERSION = "tmk-pdqf-1"
PERIODS_S = (8.0, 30.0, 120.0)
HARMONICS = 12


@dataclass
class TMKDescriptor:
    mean: np.ndarray  # (256,) average PDQF over frames (level 1)
    cos: np.ndarray  # (P, K, 256)
    sin: np.ndarray  # (P, K, 256)
    frames: int


def _weights() -> np.ndarray:
    # decaying harmonic weights: the kernel approximates a narrow peak at the true offset
    k = np.arange(HARMONICS)
    w = np.exp(-0.5 * (k / (HARMONICS / 2.5)) ** 2)
    w[0] *= 0.5
    return w


def describe(times: np.ndarray, feats: np.ndarray) -> TMKDescriptor:
    """``feats``: (n, 256) PDQF vectors at ``times`` (seconds)."""
    f = feats - feats.mean(axis=1, keepdims=True)
    f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-9
    k = np.arange(HARMONICS)
    cos = np.empty((len(PERIODS_S), HARMONICS, f.shape[1]))
    sin = np.empty_like(cos)
    for p, period in enumerate(PERIODS_S):
        ang = 2 * np.pi * np.outer(k, times) / period  # (K, n)
        cos[p] = np.cos(ang) @ f
        sin[p] = np.sin(ang) @ f
    return TMKDescriptor(f.mean(axis=0), cos, sin, len(times))


def level1(a: TMKDescriptor, b: TMKDescriptor) -> float:
    return float(a.mean @ b.mean / (np.linalg.norm(a.mean) * np.linalg.norm(b.mean) + 1e-9))


def _energy(d: TMKDescriptor, p: int, w: np.ndarray) -> float:
    return float((w * (np.einsum("kd,kd->k", d.cos[p], d.cos[p]) + np.einsum("kd,kd->k", d.sin[p], d.sin[p]))).sum())


def level2(a: TMKDescriptor, b: TMKDescriptor, max_offset_s: float, step_s: float = 0.25) -> tuple[float, float]:
    """(best normalised score, offset δ such that b at t + δ matches a at t)."""
    w = _weights()
    offsets = np.arange(-max_offset_s, max_offset_s + step_s / 2, step_s)
    total = np.zeros(len(offsets))
    norm = 0.0
    for p, period in enumerate(PERIODS_S):
        # Σ_t Σ_u <x_t, y_u> cos(2πk(u - t - δ)/P), expanded with cos/sin of t, u and δ
        cc = np.einsum("kd,kd->k", a.cos[p], b.cos[p])
        ss = np.einsum("kd,kd->k", a.sin[p], b.sin[p])
        cs = np.einsum("kd,kd->k", a.cos[p], b.sin[p])
        sc = np.einsum("kd,kd->k", a.sin[p], b.cos[p])
        ang = 2 * np.pi * np.outer(offsets, np.arange(HARMONICS)) / period  # (D, K)
        total += (np.cos(ang) * (w * (cc + ss))).sum(1) + (np.sin(ang) * (w * (cs - sc))).sum(1)
        norm += np.sqrt(_energy(a, p, w) * _energy(b, p, w))
    best = int(np.argmax(total))
    return float(total[best] / (norm + 1e-9)), float(offsets[best])
