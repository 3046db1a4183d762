"""What media readers open: a path, or an encrypted object decrypted on the fly.

Analyzers take a ``MediaRef`` (``case.store.media_ref(sha)``) and pass it through
``av_source`` to ``av.open``. An encrypted case's footage is never written out as
plaintext: PyAV reads it through a seekable, authenticating reader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from custodes.store.crypto import DecryptingReader
from custodes.store.objects import EncryptedRef

MediaRef = str | os.PathLike[str] | EncryptedRef


def av_source(ref: MediaRef) -> Any:
    """A path string, or a file object PyAV can read and seek."""
    if isinstance(ref, EncryptedRef):
        return DecryptingReader(ref.path, ref.keys)
    return os.fspath(ref)


def ref_name(ref: MediaRef) -> str:
    return ref.name if isinstance(ref, EncryptedRef) else Path(ref).name
