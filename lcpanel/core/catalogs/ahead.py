"""One item prepared ahead: the ingest's pipelines (staging batches, dealing them into
sky-order buckets, making Python rows) convert the next item in a helper thread while
the caller uses this one. Arrow and numpy release the GIL for most of their work, so the
two overlap on two cores."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor


def ahead(items: Iterable, convert: Callable) -> Iterator:
    """``convert`` of each item; the next item is read and converted in a helper thread
    while the caller uses this one (in order: one item at a time). Close it
    (:func:`contextlib.closing`) so that a caller leaving early waits for that thread."""
    items = iter(items)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(_next, items, convert)
        while (item := pending.result()) is not None:
            pending = pool.submit(_next, items, convert)
            yield item


def _next(items: Iterator, convert: Callable):
    item = next(items, None)
    return None if item is None else convert(item)
