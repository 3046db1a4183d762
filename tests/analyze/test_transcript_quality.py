"""Machine transcripts fit to show: loops collapsed, hallucinated credits and sign-offs dropped, speech kept."""

import pytest

from custodes.analyze.transcript_quality import HALLUCINATION_NOTE, LOOP_NOTE, fit_to_show, is_hallucination

pytestmark = pytest.mark.no_database


def test_a_hundredfold_no_is_collapsed_to_a_short_excerpt():
    shown, note = fit_to_show("No, no, no, " * 100)
    assert note == LOOP_NOTE
    assert shown.lower().count("no") <= 3 and len(shown) < 20 and shown.endswith("…")


def test_a_loop_inside_speech_keeps_the_speech_around_it():
    shown, note = fit_to_show("Stop it! " + "No, no, no, " * 30 + "Help me.")
    assert note == LOOP_NOTE
    assert shown.startswith("Stop it!") and shown.endswith("Help me.") and shown.lower().count("no") <= 3


def test_a_looped_phrase_of_several_words_is_collapsed():
    shown, note = fit_to_show("I told him to stop, " * 6 + "please")
    assert note == LOOP_NOTE and shown.count("told") == 2 and shown.endswith("please")


def test_a_stretched_sound_is_collapsed():
    shown, note = fit_to_show("А" + "а" * 60)
    assert note == LOOP_NOTE and len(shown) < 12


@pytest.mark.parametrize("text", ["Субтитры сделал DimaTorzok", "Продолжение следует...", "Thanks for watching!",
                                  "Субтитры создавал DimaTorzok", "[Music]", "Редактор субтитров А.Синецкая",
                                  "Спасибо за просмотр!", "Please subscribe to my channel."])
def test_typical_hallucinations_are_not_shown(text):
    assert is_hallucination(text)
    assert fit_to_show(text) == ("", HALLUCINATION_NOTE)


def test_a_credit_glued_after_real_speech_is_cut_off():
    shown, note = fit_to_show("Отпустите меня! Субтитры сделал DimaTorzok")
    assert shown == "Отпустите меня!" and note == HALLUCINATION_NOTE


@pytest.mark.parametrize("text", ["He said no, no, no and left.", "Open the door, officer.",
                                  "Не бейте его, он ничего не сделал.", "Call 111 111 111 now", "Thank you."])
def test_ordinary_speech_is_shown_unchanged(text):
    assert fit_to_show(text) == (text, None)


def test_empty_and_whitespace():
    assert fit_to_show("") == ("", None)
    assert fit_to_show("   ") == ("", None)
