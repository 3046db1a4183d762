"""Every action the code signs into a case's ledger has a sentence in the report's chain of custody, in English
and in Russian: a court reads "changed the role of reviewer account tina to viewer", not "user.role".

The actions are found in the source (literal action names passed to the ledger, the sealing session's log, the
review app's audit and the ingest's event lists, and the modules' action constants), so a new action without
words fails here."""

import re
from pathlib import Path

from custodes.export import report
from custodes.export import strings as S

SRC = Path(report.__file__).resolve().parents[1]
CALL = re.compile(r'(?:\.append|\.log|\baudit)\(\s*[\w.]+(?:\([^()]*\))?\s*,\s*"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)"')
EVENT = re.compile(r'events\.append\(\(\s*"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)"')
CONSTANT = re.compile(r'^(?:ACTION|VOID|RECOVER|CA_EVENT)\s*=\s*"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)"', re.M)
# not ledger actions of a case: the team server's own log (server.db) and the report's own skipped rows
NOT_CASE_LEDGER = {"link"}
SKIPPED_IN_REPORT = {"login", "views"}


def written_actions() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        code = path.read_text(encoding="utf-8")
        for rx in (CALL, EVENT, CONSTANT):
            found.update(rx.findall(code))
    return found - NOT_CASE_LEDGER


def test_the_scan_finds_the_actions_it_should():
    found = written_actions()
    # one of each way an action is written: a ledger call, a sealing session log, the app's audit, an ingest
    # event list, a module constant
    assert {"case.create", "user.role", "logout", "ingest.refused", "records.seal", "c2pa.ca"} <= found


def test_every_signed_action_has_words_in_both_languages():
    found = written_actions() - SKIPPED_IN_REPORT
    for lang in ("en", "ru"):
        missing = sorted(a for a in found if a not in S.ACTIONS[lang])
        assert not missing, f"{lang}: no sentence for {missing}"


def test_a_role_change_reads_as_a_sentence():
    ledger = [{"seq": 3, "action": "user.role", "actor": "alma", "subject": None, "time": "2026-12-02T10:00:00+00:00",
               "details": {"user": "tina", "role": "viewer", "previous_role": "reviewer", "via": "team server"}}]
    from datetime import UTC

    (en,) = report.custody_rows(ledger, {}, UTC, "en")
    (ru,) = report.custody_rows(ledger, {}, UTC, "ru")
    assert en["what"] == "changed the role of reviewer account tina to viewer"
    assert ru["what"] == "изменил(а) роль учётной записи tina на viewer"
