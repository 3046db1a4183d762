"""A seekable, read-only file object over fixed-size blocks fetched on demand (and the last one cached).

The decrypting reader (one AES-GCM chunk per block) and the S3 reader (one ranged GET per block) are
both this: PyAV, zipfile and the HTTP range responses seek freely, the subclass only fetches a block.
"""

from __future__ import annotations

import io
from typing import Any


class BlockReader(io.RawIOBase):
    block_size: int
    size: int

    def __init__(self) -> None:
        super().__init__()
        self._pos = 0
        self._cached: tuple[int, bytes] = (-1, b"")

    def _fetch(self, index: int) -> bytes:
        raise NotImplementedError

    def _block(self, index: int) -> bytes:
        if self._cached[0] != index:
            self._cached = (index, self._fetch(index))
        return self._cached[1]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buf: Any) -> int:
        if self._pos >= self.size:
            return 0
        index, off = divmod(self._pos, self.block_size)
        data = self._block(index)
        n = min(len(buf), len(data) - off)
        if n <= 0:
            raise OSError(f"block {index} is shorter than expected: the stored object was truncated")
        buf[:n] = data[off:off + n]
        self._pos += n
        return n
