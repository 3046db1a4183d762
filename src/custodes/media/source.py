"""What media readers open: a path, an encrypted object decrypted on the fly, or an S3 object read by ranges.

Analyzers take a ``MediaRef`` (``case.store.media_ref(sha)``) and pass it through
``av_source`` to ``av.open``. An encrypted case's footage is never written out as
plaintext: PyAV reads it through a seekable, authenticating reader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av

from custodes.store.crypto import DecryptingReader
from custodes.store.objects import EncryptedRef
from custodes.store.s3 import S3Ref, open_s3_ref

MediaRef = str | os.PathLike[str] | EncryptedRef | S3Ref

# The largest picture Custodes decodes: a decoder holds several frames of its size (one 16000x9000 thumbnail
# took 2.2 GB, four at once 7.2 GB), and no camera or DVR records beyond 8K
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
# FFmpeg's own guard, given wherever media is opened or decoded: its decoders refuse to allocate a larger
# frame, even the one opening decodes to learn the stream's format (350 MB for 16000x9000 without it)
DECODER_LIMITS = {"max_pixels": str(MAX_PIXELS)}


def frame_size_refusal(width: int | None, height: int | None) -> str | None:
    """Why pictures of this size are not decoded (None when they may be)."""
    if width and height and (max(width, height) > MAX_SIDE or width * height > MAX_PIXELS):
        return f"frame size {width}×{height} beyond what the review tools decode; kept as stored"
    return None


def open_source(source: Any) -> Any:
    """An input container for what ``av_source`` gives, with the decoder limits, and tags that are not
    UTF-8 (a damaged index, a camera's own encoding) replaced rather than refusing the whole file."""
    return av.open(source, mode="r", timeout=30, options=DECODER_LIMITS, metadata_errors="replace")


def limit_decoder(stream: Any) -> None:
    """Bound what this stream's decoder may allocate (a stream can change its picture size midway)."""
    if stream.codec_context is not None:
        stream.codec_context.options = {**stream.codec_context.options, **DECODER_LIMITS}


def av_source(ref: MediaRef) -> Any:
    """A path string, or a file object PyAV can read and seek."""
    if isinstance(ref, EncryptedRef):
        return DecryptingReader(ref.path, ref.keys)
    if isinstance(ref, S3Ref):
        return open_s3_ref(ref)
    return os.fspath(ref)


def ref_name(ref: MediaRef) -> str:
    return ref.name if isinstance(ref, EncryptedRef | S3Ref) else Path(ref).name
