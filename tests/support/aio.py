"""Running a coroutine from a synchronous test, whatever else runs in the test's thread.

pytest-playwright keeps its session-wide sync Playwright (and with it a running asyncio
loop) in the main thread from the first browser test to the end of the run, so
``asyncio.run`` or ``loop.run_until_complete`` there fails with "Cannot run the event loop
while another loop is running". :func:`run` gives the coroutine a thread and a loop of its
own and hands back its result or exception.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable


def run(coroutine_factory: Callable[[], Awaitable[Any]], timeout: float = 120) -> Any:
    """Run ``coroutine_factory()`` to completion in a new thread with a new loop."""
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = asyncio.run(coroutine_factory())
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="test-coroutine", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"coroutine still running after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
