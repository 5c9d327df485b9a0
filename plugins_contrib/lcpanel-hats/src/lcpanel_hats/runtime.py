"""The Dask scheduler that LSDB work runs on, one per process, from ``lcpanel.toml``::

    [plugin.hats]
    scheduler = "local"          # a LocalCluster started on first use (the default)
    # scheduler = "synchronous"  # no cluster: everything in the calling thread
    # scheduler = "threads"      # dask's thread pool in this process
    # scheduler = "tcp://10.0.0.5:8786"   # any running Dask scheduler
    workers = 2                  # LocalCluster worker processes (default: CPUs, at most 4)
    threads_per_worker = 1
    connect_timeout_s = 10.0

The cluster or client is made lazily, on the first search that needs it, and shared by
every app of the process (server processes each get their own LocalCluster; point them
at one scheduler address to share a cluster). :func:`close_all` releases them.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass

import dask
from lcpanel.plugin_api import UserError

log = logging.getLogger(__name__)

KEYWORDS = ("local", "synchronous", "threads")
ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$")
_DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class HatsSettings:
    """The ``[plugin.hats]`` section of ``lcpanel.toml``, validated."""

    scheduler: str = "local"
    workers: int = _DEFAULT_WORKERS
    threads_per_worker: int = 1
    connect_timeout_s: float = 10.0

    @classmethod
    def from_config(cls, config) -> "HatsSettings":
        raw = dict((getattr(config, "plugin", None) or {}).get("hats", {}) or {})
        known = {f: getattr(cls(), f) for f in cls.__dataclass_fields__}
        unknown = [k for k in raw if k not in known]
        if unknown:
            raise UserError(f"lcpanel.toml: unknown setting plugin.hats.{unknown[0]}; known: {', '.join(known)}")
        for key, value in raw.items():
            want = type(known[key])
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                raw[key] = value = float(value)
            if type(value) is not want:
                raise UserError(f"lcpanel.toml: plugin.hats.{key} must be {want.__name__}, not {value!r}")
        settings = cls(**raw)
        settings.check()
        return settings

    def check(self) -> None:
        if self.scheduler not in KEYWORDS and not ADDRESS.match(self.scheduler):
            raise UserError(
                f"lcpanel.toml: plugin.hats.scheduler {self.scheduler!r} is neither one of "
                f"{', '.join(KEYWORDS)} nor a Dask scheduler address like 'tcp://host:8786'")
        if self.workers < 1 or self.threads_per_worker < 1:
            raise UserError("lcpanel.toml: plugin.hats.workers and threads_per_worker must be at least 1")
        if not self.connect_timeout_s > 0:
            raise UserError("lcpanel.toml: plugin.hats.connect_timeout_s must be positive")


class Runtime:
    """Where dask collections are computed: a keyword scheduler or a distributed Client."""

    def __init__(self, settings: HatsSettings):
        self.settings = settings
        self._client = None
        self._cluster = None
        self._lock = threading.Lock()

    @property
    def scheduler(self):
        """What to pass as ``dask.compute(..., scheduler=...)``."""
        if self.settings.scheduler in ("synchronous", "threads"):
            return self.settings.scheduler
        return self.client()

    def client(self):
        """The distributed Client (started or connected on first use)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self):
        from distributed import Client

        from .jitcache import cache_on_workers

        s = self.settings
        if s.scheduler in ("synchronous", "threads", "local"):
            log.info("starting a Dask LocalCluster: %d workers x %d threads", s.workers, s.threads_per_worker)
            self._cluster = local_cluster(s.workers, s.threads_per_worker)
            client = Client(self._cluster, set_as_default=False)
            cache_on_workers(client)
            return client
        try:
            return Client(s.scheduler, timeout=s.connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler at {s.scheduler} (plugin.hats.scheduler in "
                            f"lcpanel.toml): {exc}") from None

    def compute(self, *collections):
        """``dask.compute`` on this runtime's scheduler; returns a tuple of results."""
        return dask.compute(*collections, scheduler=self.scheduler)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._cluster is not None:
                self._cluster.close()
                self._cluster = None


def local_cluster(workers: int, threads_per_worker: int = 1):
    """A LocalCluster of ``workers`` processes on this machine's loopback interface.

    Its scheduler serves HTTP (health and information pages) even without a dashboard,
    by default on port 8787 when free: the port a user's own Dask dashboard expects, and
    a second server process would warn that it is taken. Here it takes a free port.

    Its processes log only critical messages: a task's error reaches the caller as an
    exception, and what the workers log at ERROR is Dask's own closing race (a heartbeat
    sent while the cluster shuts down: "Failed to communicate with scheduler during
    heartbeat", with a traceback, after a finished export)."""
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL,
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


_runtimes: dict[tuple, Runtime] = {}
_runtimes_lock = threading.Lock()


def runtime_for(settings: HatsSettings) -> Runtime:
    """The process's runtime for these settings (one per distinct settings, per process)."""
    key = (os.getpid(), settings)
    with _runtimes_lock:
        rt = _runtimes.get(key)
        if rt is None:
            rt = _runtimes[key] = Runtime(settings)
        return rt


def close_all() -> None:
    """Close every client and LocalCluster this process started."""
    with _runtimes_lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
    for rt in runtimes:
        try:
            rt.close()
        except Exception:  # closing is best effort at shutdown
            log.exception("closing a Dask runtime failed")
