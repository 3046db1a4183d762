"""Issue 20, finding 5: every way evidence reaches a screen is in the ledger, batched (no line per frame)."""

from fastapi.testclient import TestClient

from custodes.web.app import create_app
from tests.web.conftest import login, session_csrf


def views_of(case, actor, after):
    out = []
    for e in list(case.ledger.entries())[after:]:
        if e["action"] == "views" and e["actor"] == actor:
            out.extend(e["details"]["views"])
    return out


def test_thumbnails_frames_playback_queue_and_search_are_audited_in_batches(web_case):
    case, _ = web_case
    before = sum(1 for _ in case.ledger.entries())
    with TestClient(create_app(case), client=("127.0.0.21", 1)) as c:  # the server stops at the end: flushed
        login(c, "otto")
        session_csrf(c)  # the queue page
        sha = c.get("/api/queue").json()[0]["sha256"]
        for t in ("1.0", "2.0", "2.0"):
            assert c.get(f"/thumbs/{sha}.jpg", params={"t": t}).status_code == 200
        assert c.get(f"/thumbs/{sha}.jpg", params={"sheet": "true"}).status_code == 200
        for rng in ("bytes=0-99", "bytes=100-299", "bytes=300-999"):
            assert c.get(f"/media/{sha}", headers={"Range": rng}).status_code == 206
        c.get("/search", params={"q": "stop"})
        c.get("/timeline")
        c.get("/reports/timeline.svg")
    seen: dict = {}
    for v in views_of(case, "otto", before):  # a flush may fall between two requests: add the batches up
        m = seen.setdefault((v["what"], v["subject"]), {"count": 0, "bytes": 0, "details": []})
        m["count"] += v["count"]
        m["bytes"] += v.get("bytes", 0)
        m["details"] += [d for d in v.get("details", []) if d not in m["details"]]
    frames = seen[("frame", sha)]
    assert frames["count"] == 3 and frames["details"] == ["1.0 s", "2.0 s"]
    assert seen[("contact sheet", sha)]["count"] == 1
    play = seen[("playback", sha)]
    assert play["count"] == 3 and play["bytes"] == 1000  # every range request, not once per session
    assert ("queue", sha) in seen and ("search", None) in seen and ("timeline", None) in seen
    assert ("timeline plot", None) in seen
    # batched: a dozen requests (and a queue page listing many items) cost a few ledger lines, one per 10 s at most
    views_events = [e for e in list(case.ledger.entries())[before:] if e["action"] == "views"]
    assert 1 <= len(views_events) < 10
    from custodes.store.verify import verify_case

    assert verify_case(case).ok


def test_a_full_batch_is_written_by_the_writer_thread_and_close_writes_the_rest(tmp_path):
    """MAX_KEYS views waiting are signed soon by the audit's own thread (not by the request that filled the
    batch, which would wait on the signature and the disk sync), long before the flush interval; what is still
    waiting when the server stops is written by close."""
    import time

    from custodes.store.ledger import KeyRing, Ledger
    from custodes.web.audit import MAX_KEYS, ViewAudit

    ledger = Ledger(tmp_path / "ledger.jsonl", KeyRing(tmp_path / "keys"))
    audit = ViewAudit(ledger, flush_s=3600)
    for i in range(MAX_KEYS):
        audit.record("rita", "queue", f"{i:064x}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not list(ledger.entries("views")):
        time.sleep(0.05)
    [batch] = list(ledger.entries("views"))
    assert len(batch["details"]["views"]) == MAX_KEYS
    audit.record("rita", "frame", "f" * 64, detail="1.0 s")
    audit.close()
    last = list(ledger.entries("views"))[-1]["details"]["views"]
    assert [v["what"] for v in last] == ["frame"] and ledger.check().problems == []
