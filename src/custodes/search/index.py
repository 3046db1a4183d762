"""Full-text search over transcripts, overlay text and notes (SQLite FTS5, or PostgreSQL tsvector + GIN), and
over reviewers' annotations (``annotation_hits``: read from the annotations themselves at each query).

The index is a derived table: ``reindex`` rebuilds one kind of entry from the
rows it comes from, so it can never drift from them. It runs where that text is
made (end of an ingest, overlay reading, transcription), never per query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from custodes.store.case import Case
from custodes.store.db import Annotation, Batch, Provenance, Recording, TranscriptSegment


class SearchError(Exception):
    pass


def _put(s: Session, kind: str, sha: str | None, start: float | None, end: float | None, ref: str,
         body: str) -> None:
    s.execute(text("INSERT INTO search_index(text, kind, sha256, start_s, end_s, ref) "
                   "VALUES (:t, :k, :s, :a, :b, :r)"),
              {"t": body, "k": kind, "s": sha, "a": start, "b": end, "r": ref})


def reindex(case: Case, kinds: tuple[str, ...] = ("transcript", "overlay", "note")) -> int:
    case.ensure_schema()
    n = 0
    with case.sessions() as s:
        for kind in kinds:
            s.execute(text("DELETE FROM search_index WHERE kind = :k"), {"k": kind})
        if "transcript" in kinds:
            for t in s.scalars(select(TranscriptSegment)):
                _put(s, "transcript", t.sha256, t.start_s, t.end_s, str(t.id), t.text)
                n += 1
        if "overlay" in kinds:
            for r in s.scalars(select(Recording)):
                seen = set()
                for rd in (r.data or {}).get("readings", []):
                    line = rd.get("text") or ""
                    key = re.sub(r"\d", "#", line)  # one entry per overlay layout, not per second of clock
                    if line and key not in seen:
                        seen.add(key)
                        _put(s, "overlay", r.sha256, rd.get("t"), rd.get("t"), r.sha256, line)
                        n += 1
        if "note" in kinds:
            for sha, ref, body in _note_entries(s):
                _put(s, "note", sha, None, None, ref, body)
                n += 1
        s.commit()
    return n


def index_new_names(case: Case) -> int:
    """Make the batch notes and file names that are not yet searchable searchable (the end of an ingest).

    Only rows the index lacks are added, so an ingest into a large case costs its own files, not the case's;
    rows a killed run recorded but never indexed are picked up by the next run. Provenance rows and batch
    notes never change once written, so an entry once made stays right."""
    case.ensure_schema()
    n = 0
    with case.sessions() as s:
        have = set(s.scalars(text("SELECT ref FROM search_index WHERE kind = 'note'")))
        for sha, ref, body in _note_entries(s):
            if ref not in have:
                _put(s, "note", sha, None, None, ref, body)
                n += 1
        s.commit()
    return n


def _note_entries(s: Session) -> Iterator[tuple[str | None, str, str]]:
    """(sha256, ref, text) of every "note" entry: each batch note, and each file's name and where it was."""
    for bid, note in s.execute(select(Batch.id, Batch.note)).all():
        if note:
            yield None, str(bid), note
    for pid, sha, name, path, member in s.execute(select(
            Provenance.id, Provenance.sha256, Provenance.original_name, Provenance.source_path,
            Provenance.member_path)).all():
        yield sha, str(pid), f"{name} {path} {member}"


def query_words(q: str) -> list[str]:
    """The words of a user's query (letters and digits in any script); a query with none is refused."""
    words = re.findall(r"\w+", q, flags=re.UNICODE)
    if not words:
        raise SearchError("the query has no words")
    return words


def _fts_query(q: str) -> str:
    """User words → an FTS5 query: every word must occur (prefix match on the last), quoted so that
    punctuation and FTS operators in user input cannot break or widen the query."""
    words = query_words(q)
    parts = [f'"{w}"' for w in words[:-1]] + [f'"{words[-1]}"*']
    return " ".join(parts)


def _pg_query(q: str) -> str:
    """The same rule for PostgreSQL's to_tsquery: every word, prefix match on the last; words are quoted."""
    words = query_words(q)

    def term(w: str, prefix: str = "") -> str:
        # PostgreSQL's parser reads the digits after a hyphen as a signed number ('CAM-02' is 'cam', '-02'):
        # a number in a query matches either form
        return f"('{w}'{prefix} | '-{w}'{prefix})" if w.isdigit() else f"'{w}'{prefix}"

    return " & ".join([term(w) for w in words[:-1]] + [term(words[-1], ":*")])


def search(case: Case, q: str, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    case.ensure_schema()
    where_kind = " AND kind = :kind" if kind else ""
    if case.engine.dialect.name == "postgresql":
        # rank is negated so that, as with FTS5's bm25, a lower raw score means a better match
        sql = ("SELECT kind, sha256, start_s, end_s, ref, ts_headline('simple', text, query, "
               "'StartSel=[, StopSel=], MaxWords=24, MinWords=6, ShortWord=1'), -ts_rank(tsv, query) AS score "
               "FROM search_index, to_tsquery('simple', :q) AS query WHERE tsv @@ query" + where_kind +
               " ORDER BY score, id LIMIT :lim")
        params = {"q": _pg_query(q), "lim": limit, "kind": kind}
    else:
        sql = ("SELECT kind, sha256, start_s, end_s, ref, snippet(search_index, 0, '[', ']', '…', 12), "
               "bm25(search_index) FROM search_index WHERE search_index MATCH :q" + where_kind +
               " ORDER BY bm25(search_index) LIMIT :lim")
        params = {"q": _fts_query(q), "lim": limit, "kind": kind}
    with case.sessions() as s:
        rows = s.execute(text(sql), params).all()
    names = case.display_names({r[1] for r in rows if r[1]})
    return [{"kind": k, "sha256": sha, "name": names.get(sha, "") if sha else "", "start_s": a, "end_s": b,
             "ref": ref, "snippet": snip, "rank": round(-score, 3)} for k, sha, a, b, ref, snip, score in rows]


def _folded(value: str) -> str:
    # ё is written as е as often as not (a pseudonym typed "Заключенный" must find "Заключённый")
    return value.lower().replace("ё", "е")


def annotation_hits(case: Case, q: str, limit: int = 100) -> list[dict[str, Any]]:
    """Annotations whose label, note or people (pseudonyms, roles) hold every word of ``q``, the last as a prefix
    (the index's rule), newest first. Read from the annotations at each query rather than indexed: the
    review app writes them one at a time, and one saved a moment ago is found. Each hit names its file as
    people read it and, where the recording's clock is known, the clock time of its start."""
    want = query_words(_folded(q))
    case.ensure_schema()
    hits: list[dict[str, Any]] = []
    with case.sessions() as s:
        anns = list(s.scalars(select(Annotation).order_by(Annotation.id.desc())))
        superseded = {a.supersedes for a in anns if a.supersedes}
        for a in anns:
            people = [p for p in (a.people or []) if isinstance(p, dict)]
            who = "; ".join(f"{p.get('role') or '?'}: {p.get('pseudonym') or ''}" for p in people)
            have = set(re.findall(r"\w+", _folded(" ".join([a.label, a.note or "", who]))))
            if all(w in have for w in want[:-1]) and any(t.startswith(want[-1]) for t in have):
                hits.append({"kind": "annotation", "sha256": a.sha256, "start_s": a.start_s, "end_s": a.end_s,
                             "ref": str(a.id), "snippet": f"#{a.id} {a.label}" + (f" ({who})" if who else "")
                             + (f": {a.note}" if a.note else ""), "current": a.id not in superseded,
                             "author": a.author})
                if len(hits) >= limit:
                    break
        starts = dict(s.execute(select(Recording.sha256, Recording.start_at).where(
            Recording.sha256.in_(sorted({h["sha256"] for h in hits})))).all()) if hits else {}
    names = case.display_names({h["sha256"] for h in hits})
    for h in hits:
        h["name"] = names.get(h["sha256"], "")
        start = starts.get(h["sha256"])
        h["clock"] = (start + timedelta(seconds=h["start_s"])).strftime("%Y-%m-%d %H:%M:%S") if start else ""
    return hits
