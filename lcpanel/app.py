"""The app object: one per process, holding config, plugin manager and registries.

There is no global plugin manager: tests build their own :class:`App`, optionally with
extra plugin objects, and two apps in one process do not see each other's plugins.
"""

from __future__ import annotations

import importlib.metadata
import logging
from functools import cached_property
from pathlib import Path

import pluggy

from . import hookspecs
from .config import Config
from .errors import PluginError, UserError
from .registry import Registry
from .stash import Stash

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "lcpanel"

# registry attribute -> registration hook
REGISTRIES = {
    "search_backends": ("register_search_backends", "search backend"),
    "product_builders": ("register_product_builders", "product builder"),
    "lc_formats": ("register_lc_formats", "light-curve format"),
    "pages": ("register_views", "page"),
    "routes": ("register_routes", "route"),
    "commands": ("register_commands", "command"),
}


class App:
    """Config, plugin manager and name-keyed registries for one process.

    ``basedir`` (optional) is where collections, datasets and products live and where
    ``lcpanel.toml`` is read from. ``plugins`` are extra plugin objects registered after
    the entry points (tests use this); ``load_entrypoints=False`` skips discovery.
    """

    def __init__(
        self,
        basedir: str | Path | None = None,
        *,
        config: Config | None = None,
        plugins: tuple = (),
        load_entrypoints: bool = True,
    ):
        self.basedir = Path(basedir).resolve() if basedir is not None else None
        self.config = config if config is not None else Config.load(self.basedir)
        #: each plugin's own per-app state, under its own :class:`lcpanel.stash.StashKey`
        self.stash = Stash()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if load_entrypoints:
            self._load_entrypoints()
        for plugin in plugins:
            self.pm.register(plugin)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from None
        self._fill_registries()
        self._started = False

    @cached_property
    def catalogs(self):
        """The basedir's collections, opened read-only once per process."""
        from .core.catalogs.catalog import Catalogs

        return Catalogs(self.require_basedir(), self.config.search,
                        opener=lambda info: self.pm.hook.open_catalog(app=self, info=info))

    @cached_property
    def datasets(self):
        """The basedir's dataset store."""
        from .core.datasets import DatasetStore

        return DatasetStore(self.require_basedir(), notify=self.notify)

    @cached_property
    def products(self):
        """The basedir's products and their worker pool."""
        from .core.products import ProductStore

        return ProductStore(self.require_basedir())

    @cached_property
    def signer(self):
        """Signs anonymous session cookies with the basedir's secret."""
        from .core.access.identity import Signer, basedir_secret

        return Signer(basedir_secret(self.require_basedir()))

    @cached_property
    def users(self):
        """The basedir's accounts and API keys."""
        from .core.access.users import UserStore

        return UserStore(self.require_basedir())

    @cached_property
    def auth(self):
        """Works out who is asking, from API keys, logins and session cookies."""
        from .core.access.auth import Authenticator

        return Authenticator(self.signer, self.users)

    @cached_property
    def rate_limiter(self):
        """Per-role request budgets shared by every server process of the basedir."""
        from .core.access.ratelimit import RateLimiter

        return RateLimiter(self.require_basedir(), self.config.limits)

    def require_basedir(self) -> Path:
        """The basedir, or a clear error for an app made without one (e.g. ``lcpanel plugins``)."""
        if self.basedir is None:
            raise UserError("this needs a basedir")
        return self.basedir

    @property
    def hook(self):
        return self.pm.hook

    def _load_entrypoints(self) -> None:
        allow, deny = set(self.config.plugins.allow), set(self.config.plugins.deny)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in deny or (allow and ep.name not in allow):
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
            try:
                self.pm.register(plugin, name=ep.name)
            except pluggy.PluginValidationError as exc:
                raise PluginError(f"plugin {ep.name!r} is invalid: {exc}") from None

    def _fill_registries(self) -> None:
        for attr, (hookname, kind) in REGISTRIES.items():
            registry = Registry(kind)
            caller = getattr(self.pm.hook, hookname)
            # get_hookimpls() lists trylast (built-in) implementations first
            for impl in caller.get_hookimpls():
                items = _call(impl, app=self)
                if items is None:
                    continue
                if not isinstance(items, (list, tuple)):
                    raise PluginError(f"{impl.plugin_name}.{hookname} must return a list, not {type(items).__name__}")
                for item in items:
                    registry.add(item, owner=impl.plugin_name)
            setattr(self, attr, registry)

    def plugin_names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin())

    def start(self) -> "App":
        """Run the ``startup`` hooks once."""
        if not self._started:
            self.pm.hook.startup(app=self)
            self._started = True
        return self

    def close(self) -> None:
        """Run the ``shutdown`` hooks if ``start`` ran."""
        if self._started:
            self.pm.hook.shutdown(app=self)
            self._started = False

    def notify(self, event: str, **kwargs) -> None:
        """Call an event hook; a failing listener is logged, never raised."""
        caller = getattr(self.pm.hook, event)
        for impl in caller.get_hookimpls():
            try:
                _call(impl, app=self, **kwargs)
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, event)

    def __enter__(self) -> "App":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _call(impl, **kwargs):
    """Call one hook implementation with the arguments it declares (a subset of the spec's)."""
    return impl.function(*[kwargs[name] for name in impl.argnames])
