"""Opening inputs: paths or binary streams, gzip/zstd sniffed by magic bytes, damage recorded.

A damaged compressed stream (truncated or corrupt tail) reads as an early end of file; the
reader then salvages what came before and `Source.damage` says what happened.
"""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from traceconv.errors import MalformedTraceError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SQLITE_MAGIC = b"SQLite format 3\x00"  # (an Nsight Systems export)
CHUNK = 1 << 20


@dataclass
class Source:
    """A readable input: `stream` yields the decompressed bytes."""

    name: str
    stream: io.BufferedReader
    compression: str | None = None
    size: int | None = None  # size on disk, when known
    damage: list[str] = field(default_factory=list)
    _raw: BinaryIO | None = None

    def peek(self, n: int = 64) -> bytes:
        return self.stream.peek(n)[:n]

    def close(self) -> None:
        self.stream.close()
        if self._raw is not None:
            self._raw.close()


def open_source(src: str | os.PathLike | BinaryIO, name: str | None = None) -> Source:
    """Open a path or wrap a binary stream, undoing gzip/zstd compression (sniffed, not by suffix)."""
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        name = name or path
        try:
            raw: BinaryIO = open(path, "rb")
        except IsADirectoryError:
            raise MalformedTraceError("is a directory, not a trace file", source=name) from None
        except OSError as e:
            raise MalformedTraceError(e.strerror or str(e), source=name) from None
        size = os.fstat(raw.fileno()).st_size
    else:
        raw = src
        name = name or getattr(src, "name", "<stream>")
        size = None
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(_Passthrough(raw), CHUNK)
    source = Source(str(name), buffered, size=size, _raw=raw)
    _decompress(source)
    return source


def _decompress(source: Source) -> None:
    head = source.stream.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        source.compression = "gzip"
        source.stream = io.BufferedReader(_GzipStream(source.stream, source), CHUNK)
    elif head == ZSTD_MAGIC:
        source.compression = "zstd"
        source.stream = io.BufferedReader(_ZstdStream(source.stream, source), CHUNK)


class _Passthrough(io.RawIOBase):
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.f.read(len(b))
        b[: len(data)] = data
        return len(data)


class _Decompressing(io.RawIOBase):
    """Decompressed bytes of `raw`; damage (a corrupt or truncated stream, a bad checksum)
    becomes end-of-file plus a note in `source.damage`, keeping everything decoded before it.

    Output is produced in bounded steps (a small compressed chunk at a time, at most the
    caller's buffer), so a decompression bomb cannot take more memory than one step."""

    kind = ""
    IN_CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO, source: Source) -> None:
        self.raw = raw
        self.source = source
        self.pos = 0  # decompressed bytes handed out
        self.pending = b""
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self.pending and not self.done:
            try:
                self.pending = self._step(len(b))
            except (zlib.error, EOFError, OSError, ValueError) as e:
                self._fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
            except Exception as e:  # zstandard.ZstdError
                if type(e).__name__ != "ZstdError":
                    raise
                self._fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        self.pos += n
        return n

    def _fail(self, reason: str) -> None:
        self.done = True
        self.source.damage.append(f"{self.kind} stream damaged after {self.pos + len(self.pending)} decompressed bytes ({reason})")

    def _step(self, max_out: int) -> bytes:
        raise NotImplementedError


class _GzipStream(_Decompressing):
    """gzip members (RFC 1952) one after another; CRC-32 and length checked per member."""

    kind = "gzip"

    def __init__(self, raw: BinaryIO, source: Source) -> None:
        super().__init__(raw, source)
        self.buf = b""  # compressed input not yet used
        self.d = None  # the current member's raw-deflate decompressor
        self.crc = 0
        self.size = 0
        self.members = 0

    def _need(self, n: int) -> bool:
        while len(self.buf) < n:
            more = self.raw.read(self.IN_CHUNK)
            if not more:
                return False
            self.buf += more
        return True

    def _header(self) -> bool:
        """Parse a member header; False at a clean end of input."""
        if not self._need(1):
            if self.members == 0:
                raise EOFError("no gzip data")
            self.done = True
            return False
        if not self._need(10):
            raise EOFError("truncated gzip header")
        if self.buf[:2] != GZIP_MAGIC or self.buf[2] != 8:
            if self.members and not self.buf.strip(b"\0"):
                self.done = True  # zero padding after the last member (tape/dd)
                return False
            raise OSError("not a gzip member" + (" (trailing garbage)" if self.members else ""))
        flags = self.buf[3]
        pos = 10
        if flags & 4:  # FEXTRA
            if not self._need(pos + 2):
                raise EOFError("truncated gzip header")
            pos += 2 + int.from_bytes(self.buf[pos : pos + 2], "little")
        for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
            if flags & flag:
                while (end := self.buf.find(b"\0", pos)) < 0:
                    if not self._need(len(self.buf) + 1):
                        raise EOFError("truncated gzip header")
                end = self.buf.find(b"\0", pos)
                pos = end + 1
        if flags & 2:  # FHCRC
            pos += 2
        if not self._need(pos):
            raise EOFError("truncated gzip header")
        self.buf = self.buf[pos:]
        self.d = zlib.decompressobj(-zlib.MAX_WBITS)
        self.crc = 0
        self.size = 0
        self.members += 1
        return True

    def _step(self, max_out: int) -> bytes:
        if self.d is None and not self._header():
            return b""
        d = self.d
        if not self.buf and not d.unconsumed_tail:
            self.buf = self.raw.read(self.IN_CHUNK)
            if not self.buf:
                raise EOFError("compressed file ended before the end-of-stream marker (truncated)")
        data = d.decompress(d.unconsumed_tail or self.buf, max(max_out, 1 << 16))
        # everything in buf has now been given to the decompressor: at the member's end what
        # it did not use is unused_data (its unconsumed_tail may still hold those bytes too)
        if d.eof:
            self.buf = d.unused_data
        elif not d.unconsumed_tail:
            self.buf = b""
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        if d.eof:
            self.d = None
            if not self._need(8):
                self.pending = data
                raise EOFError("truncated gzip trailer")
            crc, size = int.from_bytes(self.buf[:4], "little"), int.from_bytes(self.buf[4:8], "little")
            self.buf = self.buf[8:]
            if crc != self.crc or size != self.size & 0xFFFFFFFF:
                self.pending = data
                raise OSError(f"CRC check failed 0x{crc:08x} != 0x{self.crc:08x}: the data before it may be damaged too")
        return data


class _ZstdStream(_Decompressing):
    """zstd frames one after another; a frame cut short is reported (zstd itself stays silent)."""

    kind = "zstd"
    IN_CHUNK = 1 << 12  # a zstd block can expand 32768-fold: keep each step bounded

    def __init__(self, raw: BinaryIO, source: Source) -> None:
        super().__init__(raw, source)
        import zstandard

        self.zstd = zstandard.ZstdDecompressor()
        self.d = None
        self.frames = 0

    def _step(self, max_out: int) -> bytes:
        chunk = self.raw.read(self.IN_CHUNK)
        if not chunk:
            self.done = True
            if self.d is not None:
                raise EOFError("frame cut short (truncated)")
            if self.frames == 0:
                raise EOFError("no zstd data")
            return b""
        out = []
        while chunk:
            if self.d is None:
                if self.frames and not chunk.strip(b"\0"):
                    return b"".join(out)
                self.d = self.zstd.decompressobj()
                self.frames += 1
            out.append(self.d.decompress(chunk))
            if self.d.eof:
                chunk = self.d.unused_data
                self.d = None
            else:
                chunk = b""
        return b"".join(out)
