"""Synthetic body-camera / CCTV footage for the demo case and the tests.

Real video, really encoded (H.264 + AAC through PyAV), with a burnt-in overlay
(camera ID and a running clock, as body cameras print them), routine rounds
(a figure walking slowly), and optional *struggle* windows: two figures in
fast, irregular motion, camera shake and a loud audio segment with impacts
and shouting. Speech comes from espeak-ng when it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

AUDIO_RATE = 16000
SKIN = (200, 170, 150)


@dataclass
class Speech:
    at_s: float
    text: str
    voice: str = "en"  # espeak-ng voice, e.g. "en", "ru"
    gain: float = 0.6


@dataclass
class ClipSpec:
    camera_id: str
    start: datetime
    duration_s: float
    fps: int = 10
    size: tuple[int, int] = (640, 360)
    struggles: list[tuple[float, float]] = field(default_factory=list)  # (start_s, end_s)
    speech: list[Speech] = field(default_factory=list)
    seed: int = 0
    scene: int = 0  # background variant
    device_model: str = "BWC-Demo 2"
    crf: int = 28
    grey: bool = False


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for cand in ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
                 "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"):
        if Path(cand).exists():
            return ImageFont.truetype(cand, size)
    return ImageFont.load_default(size=size)


def overlay_text(camera_id: str, t: datetime) -> str:
    return f"{camera_id}  {t:%Y-%m-%d %H:%M:%S}"


def _background(spec: ClipSpec, rng: np.random.Generator) -> np.ndarray:
    w, h = spec.size
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    base = 60 + 50 * y + 20 * np.sin(6.28 * (x * (2 + spec.scene)))
    img = np.stack([base * 0.9, base, base * 1.05 + 10 * spec.scene], axis=-1)
    # doors and floor line: fixed structure that makes each camera's view distinct
    for i in range(3 + spec.scene % 3):
        x0 = int(w * (0.1 + 0.28 * i)) % (w - 60)
        img[int(h * 0.25):int(h * 0.8), x0:x0 + 50] = [90 + 20 * i, 85, 70]
    img[int(h * 0.8):, :] *= 0.7
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _figure(draw: ImageDraw.ImageDraw, cx: float, cy: float, scale: float, color: tuple[int, int, int] | int,
            limb_phase: float, lying: bool = False, head: tuple[int, int, int] | int = SKIN) -> None:
    s = scale
    if lying:
        draw.ellipse([cx - 40 * s, cy - 10 * s, cx + 40 * s, cy + 10 * s], fill=color)
        draw.ellipse([cx + 38 * s, cy - 9 * s, cx + 56 * s, cy + 9 * s], fill=head)
        return
    draw.ellipse([cx - 9 * s, cy - 62 * s, cx + 9 * s, cy - 44 * s], fill=head)  # head
    draw.rectangle([cx - 12 * s, cy - 44 * s, cx + 12 * s, cy], fill=color)  # torso
    for sign in (-1, 1):
        ang = sign * limb_phase
        draw.line([cx, cy - 38 * s, cx + sign * 22 * s * np.cos(ang), cy - 38 * s + 22 * s * np.sin(ang) + 10 * s],
                  fill=color, width=max(2, int(5 * s)))
        draw.line([cx + sign * 6 * s, cy, cx + sign * 6 * s + 14 * s * np.sin(ang), cy + 30 * s],
                  fill=color, width=max(2, int(6 * s)))


def _clothed_figure(img: Image.Image, cloth: np.ndarray, cx: float, cy: float, scale: float,
                    color: tuple[int, int, int], limb_phase: float, lying: bool = False) -> Image.Image:
    """A figure whose clothes carry a pattern that moves with it: flat-coloured shapes have no texture
    inside, so optical flow there is guesswork, which real people in real footage never give."""
    mask = Image.new("L", img.size, 0)
    _figure(ImageDraw.Draw(mask), cx, cy, scale, 255, limb_phase, lying, head=128)
    m = np.asarray(mask)
    arr = np.array(img)
    body = m == 255
    pattern = np.roll(cloth, int(round(cx)), axis=1)[body][:, None]
    arr[body] = np.clip(np.asarray(color, dtype=np.float32) * pattern, 0, 255).astype(np.uint8)
    arr[m == 128] = SKIN
    return Image.fromarray(arr)


def _in_struggle(spec: ClipSpec, t: float) -> bool:
    return any(a <= t < b for a, b in spec.struggles)


def render_frames(spec: ClipSpec):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(spec.seed)
    bg = _background(spec, rng)
    w, h = spec.size
    font = _font(max(12, h // 22))
    n = int(round(spec.duration_s * spec.fps))
    # every clip its own round: where the guard starts, how fast and which way he walks, when
    # a second person crosses — so separate recordings never look like copies of each other
    walker_x = w * rng.uniform(0.1, 0.9)
    cruise = w * rng.uniform(0.01, 0.03) / spec.fps
    heading = float(rng.choice([-1, 1]))
    speed = heading * cruise
    crosser_t = rng.uniform(0, max(1.0, spec.duration_s - 20))
    door = int(rng.integers(0, 3))
    jolt_x = jolt_y = 0.0
    # cloth pattern: 4-px blocks of brightness 0.6–1.6 around each figure's colour
    cloth = np.repeat(np.repeat(rng.uniform(0.6, 1.6, (h // 4 + 1, w // 4 + 1)), 4, 0), 4, 1)[:h, :w]
    for i in range(n):
        t = i / spec.fps
        img = Image.fromarray(bg.copy())
        draw = ImageDraw.Draw(img)
        if _in_struggle(spec, t):
            # two figures grappling in one place: bodies lunge at and recoil from each other, arms
            # strike back and forth several times a second, one is pushed to the floor in the second
            # half and kicked; the body camera jolts. Motion is continuous (people do not teleport):
            # what a learned model of real CCTV fights can recognise.
            ph = rng.normal(0, 0.15, 4)
            lunge = np.sin(2 * np.pi * 1.6 * t + ph[0]) + 0.5 * np.sin(2 * np.pi * 3.1 * t + ph[1])
            # and the pair is shoved across the floor, one way then the other
            shove = 0.15 * w * np.sin(2 * np.pi * 0.4 * t + ph[0])
            ax = w * 0.46 + 0.06 * w * lunge + shove
            bx = w * 0.56 - 0.05 * w * np.sin(2 * np.pi * 1.3 * t + 1.0) + shove
            strike_a = 1.4 * np.sin(2 * np.pi * 3.0 * t + ph[2])
            strike_b = 1.4 * np.sin(2 * np.pi * 2.4 * t + 2.0 + ph[3])
            lying = any(a <= t < b and t > (a + b) / 2 for a, b in spec.struggles)
            img = _clothed_figure(img, cloth, ax, h * 0.78, h / 150, (30, 40, 90), strike_a)
            img = _clothed_figure(img, cloth, bx, h * 0.8 if lying else h * 0.78, h / 150, (140, 60, 40), strike_b,
                                  lying=lying)
            arr = np.asarray(img)
            jolt_x = 0.7 * jolt_x + rng.normal(0, 5)  # body-camera jolts: a damped random walk
            jolt_y = 0.7 * jolt_y + rng.normal(0, 5)
            arr = np.roll(arr, (int(jolt_y), int(jolt_x)), axis=(0, 1))
            img = Image.fromarray(arr)
            draw = ImageDraw.Draw(img)
        else:
            # routine round: the guard walks slowly, turning at the walls; someone crosses once
            # at a wall he slows down, stops and walks back over about a second (people do not bounce)
            if not w * 0.08 < walker_x < w * 0.92:
                heading = 1.0 if walker_x < w / 2 else -1.0
            speed += np.clip(heading * cruise - speed, -2 * cruise / spec.fps, 2 * cruise / spec.fps)
            walker_x += speed
            img = _clothed_figure(img, cloth, walker_x, h * 0.78, h / 300, (30, 40, 90), np.sin(t * 3) * 0.6)
            if crosser_t <= t < crosser_t + 20:  # a walk across the corridor, 20 s wall to wall
                img = _clothed_figure(img, cloth, w * (t - crosser_t) / 20, h * 0.74, h / 330, (90, 90, 60),
                                      np.sin(t * 3) * 0.6)
            draw = ImageDraw.Draw(img)
            x0 = int(w * (0.1 + 0.28 * door)) % (w - 60)
            draw.rectangle([x0, int(h * 0.25), x0 + 50, int(h * 0.8)], fill=(35, 30, 28))  # an open cell door
        stamp = overlay_text(spec.camera_id, spec.start + timedelta(seconds=int(t)))
        bbox = draw.textbbox((8, 6), stamp, font=font)
        draw.rectangle([bbox[0] - 4, bbox[1] - 3, bbox[2] + 4, bbox[3] + 3], fill=(0, 0, 0))
        draw.text((8, 6), stamp, font=font, fill=(255, 255, 255))
        if spec.grey:
            img = img.convert("L").convert("RGB")
        # sensor noise: no real camera gives two identical frames, and a model of real footage knows it
        noise = rng.standard_normal((h, w, 1), dtype=np.float32) * 2.5
        yield np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wf:
        rate = wf.getframerate()
        pcm = np.frombuffer(wf.readframes(wf.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    if rate != AUDIO_RATE:
        idx = np.arange(0, len(pcm), rate / AUDIO_RATE)
        pcm = np.interp(idx, np.arange(len(pcm)), pcm).astype(np.float32)
    return pcm


def _festival_ru(text: str) -> np.ndarray | None:
    """Russian from Festival's MSU voice (Debian festvox-ru): far more natural than espeak-ng's,
    which speech recognisers cannot follow."""
    exe = shutil.which("text2wave")
    if exe is None or not Path("/usr/share/festival/voices/russian").exists():
        return None
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "t.txt", Path(d) / "s.wav"
        src.write_text(text + "\n", encoding="utf-8")
        proc = subprocess.run([exe, "-eval", "(voice_msu_ru_nsh_clunits)", str(src), "-o", str(out)],
                              capture_output=True)
        if proc.returncode != 0 or not out.exists() or out.stat().st_size < 1000:
            return None
        return _read_wav(out)


def espeak(text: str, voice: str = "en") -> np.ndarray | None:
    """Speech as float32 mono at AUDIO_RATE (Festival for Russian where installed, else espeak-ng),
    or None when no synthesiser is installed."""
    if voice == "ru":
        ru = _festival_ru(text)
        if ru is not None:
            return ru
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", "150", "-w", str(out), text], check=True, capture_output=True)
        return _read_wav(out)


def render_audio(spec: ClipSpec) -> np.ndarray:
    rng = np.random.default_rng(spec.seed + 1)
    n = int(spec.duration_s * AUDIO_RATE)
    audio = rng.normal(0, 0.004, n).astype(np.float32)  # room tone
    # footsteps during routine rounds
    for k in range(0, n, int(AUDIO_RATE * 0.6)):
        audio[k:k + 400] += (rng.normal(0, 0.03, min(400, n - k))).astype(np.float32)
    for a, b in spec.struggles:
        i0, i1 = int(a * AUDIO_RATE), min(n, int(b * AUDIO_RATE))
        seg = rng.normal(0, 0.12, i1 - i0).astype(np.float32)
        for _ in range(int((b - a) * 3)):  # impacts: short, very loud transients
            p = rng.integers(0, max(1, i1 - i0 - 1600))
            env = np.exp(-np.arange(1600) / 200.0).astype(np.float32)
            seg[p:p + 1600] += (rng.normal(0, 0.8, 1600) * env).astype(np.float32)
        audio[i0:i1] += seg
        shout = espeak("Stop! Stop it! Help! No!", "en")
        if shout is not None:
            for off in np.arange(a + 0.5, max(a + 0.6, b - 1.5), 4.0):
                j = int(off * AUDIO_RATE)
                m = max(0, min(len(shout), n - j))
                audio[j:j + m] += 0.9 * shout[:m]
    for sp in spec.speech:
        pcm = espeak(sp.text, sp.voice)
        if pcm is None:
            continue
        j = int(sp.at_s * AUDIO_RATE)
        m = max(0, min(len(pcm), n - j))
        audio[j:j + m] += sp.gain * pcm[:m]
    return np.clip(audio, -1, 1)


def write_clip(path: Path, spec: ClipSpec) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = render_audio(spec)
    with av.open(str(path), "w") as out:
        out.metadata["creation_time"] = spec.start.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        out.metadata["comment"] = f"device={spec.device_model}; camera={spec.camera_id}"
        out.metadata["title"] = spec.camera_id
        vs = out.add_stream("libx264", rate=spec.fps)
        vs.width, vs.height = spec.size
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "veryfast", "crf": str(spec.crf), "g": str(spec.fps * 2)}
        aus = out.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        for arr in render_frames(spec):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        step = 1024
        for k in range(0, len(audio), step):
            chunk = audio[k:k + step]
            if len(chunk) < step:
                chunk = np.pad(chunk, (0, step - len(chunk)))
            fr = av.AudioFrame.from_ndarray(chunk[np.newaxis, :].astype(np.float32), format="fltp", layout="mono")
            fr.sample_rate = AUDIO_RATE
            fr.pts = k
            fr.time_base = Fraction(1, AUDIO_RATE)
            for pkt in aus.encode(fr):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)
    return path


def transcode(src: Path, dst: Path, width: int, height: int, crf: int = 34, grey: bool = False,
              start_s: float = 0.0, duration_s: float | None = None) -> Path:
    """Re-encode (optionally scaled, cut, greyscale) — a near-duplicate of ``src``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        fps = vin.average_rate or 10
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": str(crf)}
        for frame in inp.decode(vin):
            t = frame.time or 0.0
            if t < start_s:
                continue
            if duration_s is not None and t >= start_s + duration_s:
                break
            img = frame.to_image().resize((width, height))
            if grey:
                img = img.convert("L").convert("RGB")
            for pkt in vs.encode(av.VideoFrame.from_image(img)):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return dst
