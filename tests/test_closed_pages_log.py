"""A visitor closing a page while the server writes it an update is not an error: Panel
writes some updates to the page's websocket without awaiting them, so asyncio reports the
closed socket as "Task exception was never retrieved" with a traceback, at ERROR, once
per closed page. The server drops exactly those; any other lost task exception is still
logged."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from lcpanel.server import _ClosedPageWrites, quiet_closed_pages


def _lose_a_task_failing_with(exc: BaseException) -> None:
    """A task that fails with ``exc`` and that nobody awaits: asyncio logs it when it is
    collected, as it does for Panel's unawaited websocket writes. In a thread of its own:
    the test's thread may have a running loop (Playwright's sync API leaves one)."""
    async def fail():
        raise exc

    def run():
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(fail())
            loop.run_until_complete(asyncio.sleep(0))  # one pass of the loop runs the task
            assert task.done()
            del task
            gc.collect()
        finally:
            loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.fixture
def unquieted():
    """asyncio's logger without the filter, whatever ran before in this process (a server
    started on a thread by another test installs it), and as it was afterwards."""
    logger = logging.getLogger("asyncio")
    before = list(logger.filters)
    for f in before:
        if isinstance(f, _ClosedPageWrites):
            logger.removeFilter(f)
    yield logger
    logger.filters[:] = before


@pytest.fixture
def quieted(unquieted):
    quiet_closed_pages()
    quiet_closed_pages()  # twice: one filter
    assert sum(isinstance(f, _ClosedPageWrites) for f in unquieted.filters) == 1


@pytest.mark.parametrize("exc", [WebSocketClosedError(), StreamClosedError()])
def test_a_closed_page_is_not_logged_as_an_error(caplog, quieted, exc):
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        _lose_a_task_failing_with(exc)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_other_lost_task_errors_are_still_logged(caplog, quieted):
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        _lose_a_task_failing_with(ValueError("a real bug"))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "never retrieved" in errors[0].getMessage()
    assert isinstance(errors[0].exc_info[1], ValueError)


def test_without_the_filter_asyncio_logs_the_closed_page(caplog, unquieted):
    """The case the filter is for happens: asyncio logs a closed page's lost write as an error."""
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        _lose_a_task_failing_with(WebSocketClosedError())
    assert [r for r in caplog.records if r.levelno >= logging.ERROR and "never retrieved" in r.getMessage()]
