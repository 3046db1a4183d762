"""What went wrong, in one sentence a user can act on.

Commands and the review app fail for reasons outside Custodes: a full disk, a read-only or failing drive,
a database server that went away, a damaged database file. Each becomes one sentence naming what failed and
what to do; nothing already stored is touched by the failure (every write is atomic or sealed first).
Anything else is a bug: the traceback goes to a crash file, the user gets its path.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
import traceback
from pathlib import Path

KEPT = "what was already stored is kept"


def _where(exc: BaseException) -> str:
    name = getattr(exc, "filename", None)
    return f" ({name})" if name else ""


def _os_error(exc: OSError) -> str | None:
    where = _where(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk is full{where}: free some space (or move the case to a larger disk) and run the "
                f"command again; {KEPT} and the command resumes where it stopped")
    if exc.errno == errno.EROFS:
        return f"the disk is read-only{where}: make it writable (or copy the case to a writable disk) and try again"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied{where}: run as the case's owner or fix the folder's permissions, then try again"
    if exc.errno == errno.EIO:
        return (f"the disk failed to read or write{where} (input/output error): check the drive, copy the case "
                "to a healthy disk, then run `custodes verify`")
    return None


def _database_error(exc: BaseException) -> str | None:
    text = str(getattr(exc, "orig", exc)).lower()
    if "database or disk is full" in text or "no space left" in text or "could not extend file" in text:
        return (f"the disk holding the case database is full: free some space and run the command again; {KEPT} "
                "and the command resumes where it stopped")
    if "disk i/o error" in text:
        return ("the case database could not be read or written (disk I/O error): the disk may be full, "
                "failing or read-only; free space or copy the case to a healthy disk, then run `custodes verify`")
    if "readonly database" in text or "read-only" in text:
        return "the case database is on a read-only disk or folder: make it writable and try again"
    if "database is locked" in text:
        return "the case database is busy (another command holds it): wait for it to finish and try again"
    if "file is not a database" in text or "malformed" in text:
        return ("the case database is damaged (not a readable SQLite database): restore custodes.db from a "
                "backup, or rebuild it from the ledger with `custodes recover CASE`")
    if "password authentication failed" in text:
        return "the case's database server refused the password: set PGPASSWORD (or ~/.pgpass) and try again"
    if "does not exist" in text and ("database" in text or "relation" in text):
        return ("the case's server database (or its tables) does not exist: it was dropped or the URL in case.json "
                "is wrong; restore it from a backup, or rebuild it from the ledger with `custodes recover CASE`")
    if "connection refused" in text or "could not connect" in text or "server closed the connection" in text \
            or "could not translate host name" in text or "terminating connection" in text:
        return "cannot reach the case's database server: check that it is running and reachable, then try again"
    return None


def explain(exc: BaseException, web: bool = False) -> str | None:
    """One sentence for a failure of the environment (disk, database), or None when it is not one.

    ``web``: said to a reviewer in the review app, who has no command to run again."""
    msg = _explain(exc)
    if msg and web:
        head = "the server's disk is full" if " full" in msg.split(":", 1)[0] else \
            re.sub(r" \([^)]*\)", "", msg.split(":", 1)[0])  # no server paths for the browser
        msg = f"{head}: nothing of this request was saved; tell whoever runs the server, then try again"
    return msg


def _explain(exc: BaseException) -> str | None:
    from sqlalchemy.exc import DBAPIError

    for e in _chain(exc):
        if isinstance(e, OSError):
            msg = _os_error(e)
            if msg:
                return msg
        if isinstance(e, DBAPIError) or type(e).__name__ in ("OperationalError", "DatabaseError"):
            msg = _database_error(e)
            if msg:
                return msg
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in out:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def crash_file(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected error where only this user can read it (0600, a new file, never
    through a link); None when nowhere is writable."""
    text = "".join(traceback.format_exception(exc))
    for base in (Path.home() / ".cache" / "custodes", Path(tempfile.gettempdir()) / f"custodes-{os.getuid()}"):
        try:
            base.mkdir(mode=0o700, parents=True, exist_ok=True)
            if base.is_symlink() or base.stat().st_uid != os.getuid():
                continue
            path = base / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}.txt"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


def crash_report(exc: BaseException) -> str:
    """The sentence for an unexpected error (a bug), pointing to its crash file."""
    path = crash_file(exc)
    where = f"the details are in {path}" if path else "no crash file could be written"
    return f"internal error ({type(exc).__name__}: {str(exc)[:200]}); {where}; please report it"
