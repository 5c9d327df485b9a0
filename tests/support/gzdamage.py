"""Damaged copies of a gzip file's bytes, for readers that must refuse them as Python's
gzip (and astrobase, which reads with it) does."""

from __future__ import annotations

#: a damage to the first deflate block's header (zlib.error, not an OSError), a stream
#: cut in half, bytes after the stream, a wrong CRC-32
DAMAGES = ("deflate stream", "truncated", "junk after", "crc")


def damaged(raw: bytes, damage: str) -> bytes:
    return {"deflate stream": raw[:20] + bytes(64) + raw[84:], "truncated": raw[:len(raw) // 2],
            "junk after": raw + b"junk", "crc": raw[:-8] + bytes(4) + raw[-4:]}[damage]
