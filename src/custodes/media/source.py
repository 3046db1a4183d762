"""What media readers open: a path, an encrypted object decrypted on the fly, or an S3 object read by ranges.

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
from custodes.store.s3 import S3Ref, open_s3_ref

MediaRef = str | os.PathLike[str] | EncryptedRef | S3Ref


def av_source(ref: MediaRef) -> Any:
    """A path string, or a file object PyAV can read and seek."""
    if isinstance(ref, EncryptedRef):
        return DecryptingReader(ref.path, ref.keys)
    if isinstance(ref, S3Ref):
        return open_s3_ref(ref)
    return os.fspath(ref)


def ref_name(ref: MediaRef) -> str:
    return ref.name if isinstance(ref, EncryptedRef | S3Ref) else Path(ref).name
