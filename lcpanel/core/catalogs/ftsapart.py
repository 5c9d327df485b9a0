"""The catalog's full-text index, built apart (:mod:`lcpanel.core.catalogs.apart`).

:class:`FTSApart` builds it in a thread, into a file of its own, as a contentless FTS5
table fed the text columns of a copy of the catalog in row-id order;
:meth:`FTSApart.copy_into` then copies its shadow tables into the catalog's
external-content table ``object_fts``.

FTS5 writes the same index for the same rows fed in the same order, whichever the content
option, so the copy equals a ``'rebuild'`` then ``'optimize'`` of ``object_fts`` byte for byte
(tests/test_fts_apart.py).

The rows go in with FTS5's incremental merging off (``automerge`` 0) and a merge forced only
when 64 segments pile up at one level (``crisismerge``; 16 by default); one ``'optimize'`` at
the end merges everything into a single segment, and the settings are taken out again, so
the catalog's table has FTS5's defaults. With the default merging (groups of 4), each id,
a term of its own, was rewritten at every level: 1e7 catalog rows took 55 s alone, and now
29 + 8 s; lookups in the one segment are faster too (1e6 rows: an id 22 -> 10 us, an id
prefix 40 -> 24 us).
"""

from __future__ import annotations

import sqlite3

from .apart import Apart
from .fts import FTS_TOKENIZER

TABLE = "object_fts"
#: FTS5's shadow tables of an external-content or contentless table (no ``_content``)
SHADOW_TABLES = ("data", "idx", "docsize", "config")
#: FTS5 settings while the index is built (see the module docstring)
BUILD_SETTINGS = (("automerge", 0), ("crisismerge", 64))


def fts_ddl(columns: list[str], content: str = "content='object_catalog', content_rowid='row_id'") -> str:
    """``CREATE VIRTUAL TABLE object_fts``: the catalog's (external content, the default)
    or, with ``content="content=''"``, the contentless one built apart."""
    return (f'CREATE VIRTUAL TABLE {TABLE} USING fts5({_names(columns)}, {content}, '
            f'tokenize="{FTS_TOKENIZER}", prefix=\'3\')')


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


class FTSApart(Apart):
    """Build the full-text index of ``columns`` of the rows of ``catalog`` (a copy of
    the catalog) into ``path``, in a thread started at once."""

    tables = tuple(f"{TABLE}_{name}" for name in SHADOW_TABLES)
    copy_step = "copy of the full text"
    thread_name = "fts-apart"

    def build(self, conn: sqlite3.Connection) -> None:
        conn.execute(fts_ddl(self.columns, content="content=''"))
        conn.executemany(f"INSERT INTO {TABLE}({TABLE}, rank) VALUES (?, ?)", BUILD_SETTINGS)
        names = _names(self.columns)
        with self.timeline.step("full text, built apart"):
            conn.execute(f"INSERT INTO {TABLE}(rowid, {names}) SELECT row_id, {names} "
                         "FROM catalog.object_catalog ORDER BY row_id")
            conn.execute(f"INSERT INTO {TABLE}({TABLE}) VALUES ('optimize')")
            conn.execute(f"DELETE FROM {TABLE}_config WHERE k IN ({', '.join('?' * len(BUILD_SETTINGS))})",
                         [k for k, _ in BUILD_SETTINGS])

    def create(self, conn: sqlite3.Connection) -> None:
        conn.execute(fts_ddl(self.columns))
