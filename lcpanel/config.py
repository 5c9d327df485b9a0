"""Configuration of one lcpanel basedir, read from ``BASEDIR/lcpanel.toml``.

Every setting has a documented default, so a basedir without the file works. Unknown
keys are errors (a misspelled setting must not be silently ignored). Plugins keep their
own settings under ``[plugin.<name>]``, which lcpanel passes through unchecked.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

CONFIG_FILE = "lcpanel.toml"


@dataclass(frozen=True)
class PluginSettings:
    #: entry-point names to load; empty means every installed ``lcpanel`` plugin
    allow: tuple[str, ...] = ()
    #: entry-point names never to load (use this to replace a built-in plugin)
    deny: tuple[str, ...] = ()


def per_role(settings, role: str, setting: str):
    """A per-role setting of a section: ``settings.<role>_<setting>`` (roles: anonymous,
    user, staff, admin)."""
    return getattr(settings, f"{role}_{setting}")


@dataclass(frozen=True)
class SearchSettings:
    cone_default_radius_arcmin: float = 5.0
    cone_max_radius_arcmin: float = 60.0
    xmatch_default_radius_arcsec: float = 3.0
    xmatch_max_radius_arcsec: float = 60.0
    xmatch_max_lines: int = 5000
    max_upload_bytes: int = 1_000_000
    default_limit: int = 1000
    max_limit: int = 100_000
    #: wall-clock limit for user-supplied SQL (column filters, ADQL)
    query_timeout_s: float = 5.0


@dataclass(frozen=True)
class LimitSettings:
    """Per-role budgets. Requests per minute are shared by every server process of the
    basedir (0 = unlimited); anonymous visitors are counted per client address, everyone
    else per identity. ``*_max_rows`` caps the rows one search may keep in its dataset."""

    anonymous_requests_per_minute: int = 1200
    user_requests_per_minute: int = 3000
    staff_requests_per_minute: int = 6000
    admin_requests_per_minute: int = 0
    #: requests a client may make at once above the steady rate
    burst: int = 120
    #: pages (each a server-side session: ~0.4 s of CPU, ~5 MB) one client (a logged-in
    #: account, else an address) may open per minute, and at once; websocket connections
    #: are counted apart, by the same rule
    page_views_per_minute: int = 60
    page_burst: int = 30
    anonymous_max_rows: int = 10_000
    user_max_rows: int = 100_000
    staff_max_rows: int = 100_000
    admin_max_rows: int = 100_000

    def requests_per_minute(self, role: str) -> int:
        return per_role(self, role, "requests_per_minute")

    def max_rows(self, role: str) -> int:
        return per_role(self, role, "max_rows")


@dataclass(frozen=True)
class RequestSettings:
    """What one server process takes on at once, and how big and slow one request may be.

    Searches, ADQL, product planning, password checks and dataset writes run on
    ``workers`` threads per process; at most ``max_heavy`` such requests are held at once
    (running or waiting), and one more is answered 503 with ``Retry-After``. A result is
    cut at ``*_max_result_bytes`` (TAP: OVERFLOW; JSON API: 413); SQLite may hold at most
    ``sqlite_heap_bytes`` of memory per process (0: no cap)."""

    workers: int = 4
    max_heavy: int = 16
    retry_after_s: int = 5
    #: the largest request body; Tornado refuses a larger one before buffering it
    max_body_bytes: int = 8 * 1024 * 1024
    #: a connection that has not sent a complete request head within this long is closed
    idle_timeout_s: float = 60.0
    #: a request body must arrive within this long
    body_timeout_s: float = 120.0
    sqlite_heap_bytes: int = 512 * 1024 * 1024
    anonymous_max_result_bytes: int = 16 * 1024 * 1024
    user_max_result_bytes: int = 64 * 1024 * 1024
    staff_max_result_bytes: int = 256 * 1024 * 1024
    admin_max_result_bytes: int = 256 * 1024 * 1024

    def max_result_bytes(self, role: str | None) -> int:
        return per_role(self, role or "admin", "max_result_bytes")


@dataclass(frozen=True)
class QuotaSettings:
    """Disk quotas and retention (see README "Quotas and retention"). Sizes are in MB
    (10^6 bytes), 0 = unlimited. Anonymous visitors share one quota per client address."""

    #: disk one identity's datasets and products may take
    anonymous_disk_mb: float = 50.0
    user_disk_mb: float = 2000.0
    staff_disk_mb: float = 10000.0
    admin_disk_mb: float = 0.0
    #: the largest product zip one request may build (estimated when it is planned)
    anonymous_product_mb: float = 20.0
    user_product_mb: float = 1000.0
    staff_product_mb: float = 5000.0
    admin_product_mb: float = 0.0
    #: comments (on the dataset and on its objects) one dataset may hold (their length:
    #: ``[reviews] max_comment_chars``)
    max_comments_per_dataset: int = 200
    #: anonymous datasets that are not public are removed this long after their last change
    anonymous_dataset_days: float = 7.0
    #: products nobody requested or downloaded for this long are removed (0 = never)
    product_unused_days: float = 30.0
    #: how often a running server collects expired things (0 = never)
    gc_interval_minutes: float = 60.0

    def disk_bytes(self, role: str) -> int:
        return int(per_role(self, role, "disk_mb") * 1e6)

    def product_bytes(self, role: str) -> int:
        return int(per_role(self, role, "product_mb") * 1e6)


@dataclass(frozen=True)
class ReviewSettings:
    """Caps on comments: the length of every comment (on objects, datasets and their
    objects), and how many object comments one identity may add
    (:mod:`lcpanel.core.objects.reviews`); admins are not capped on objects."""

    #: characters one comment may hold (object, dataset and dataset-object comments alike)
    max_comment_chars: int = 5000
    #: comments one identity may add to one object in any 24 hours (0 = unlimited)
    max_comments_per_object_per_day: int = 20


@dataclass(frozen=True)
class PeriodSearchSettings:
    """Period searches on demand (:mod:`lcpanel.core.objects.periodsearch`): the worker
    processes, the concurrency per identity (anonymous visitors: per client address;
    0 = unlimited) and the bounds of one search."""

    #: searches running at once per server process, each in a worker process of its own
    workers: int = 2
    #: searches one identity may have queued or running at once, per role
    anonymous_concurrent: int = 1
    user_concurrent: int = 2
    staff_concurrent: int = 4
    admin_concurrent: int = 0
    #: light-curve points one search may use (after the time and magnitude filters)
    max_points: int = 200_000
    #: trial frequencies one search may evaluate
    max_frequencies: int = 500_000
    #: points x frequencies one search may evaluate
    max_work: float = 2e9
    #: a search running longer is stopped and marked failed
    time_limit_s: float = 300.0
    #: finished searches one object may keep (their owners delete old ones)
    max_results_per_object: int = 200


@dataclass(frozen=True)
class Config:
    plugins: PluginSettings = field(default_factory=PluginSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    requests: RequestSettings = field(default_factory=RequestSettings)
    quotas: QuotaSettings = field(default_factory=QuotaSettings)
    reviews: ReviewSettings = field(default_factory=ReviewSettings)
    periodsearch: PeriodSearchSettings = field(default_factory=PeriodSearchSettings)
    plugin: dict = field(default_factory=dict)

    @classmethod
    def load(cls, basedir: str | Path | None) -> "Config":
        """The basedir's config, or the defaults when there is no basedir or no file."""
        if basedir is None:
            return cls()
        path = Path(basedir) / CONFIG_FILE
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{CONFIG_FILE} is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        sections = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in sections:
                raise UserError(f"{CONFIG_FILE}: unknown section [{key}]; known: {', '.join(sections)}")
            if key == "plugin":
                kwargs[key] = dict(value)
                continue
            kwargs[key] = _section(sections[key].default_factory, key, value)
        return cls(**kwargs)


#: settings that moved: (section, key) -> where they are now
MOVED = {("quotas", "max_comment_chars"): "[reviews] max_comment_chars (one length for every comment)"}


def _section(section_cls, name: str, values: dict):
    known = {f.name: f for f in dataclasses.fields(section_cls)}
    out = {}
    for key, value in values.items():
        if (name, key) in MOVED:
            raise UserError(f"{CONFIG_FILE}: {name}.{key} has moved to {MOVED[name, key]}")
        if key not in known:
            raise UserError(f"{CONFIG_FILE}: unknown setting {name}.{key}; known: {', '.join(known)}")
        default = getattr(section_cls(), key)
        if isinstance(default, tuple):
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int):
            value = float(value)
        if type(value) is not type(default):
            raise UserError(f"{CONFIG_FILE}: {name}.{key} must be {type(default).__name__}, not {value!r}")
        out[key] = value
    return section_cls(**out)
