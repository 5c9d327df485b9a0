"""The plugin core: entry-point discovery, registries, check_pending, allow/deny lists."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lcpanel.app import App
from lcpanel.config import Config, PluginSettings
from lcpanel.errors import NotFound, PluginError
from lcpanel.extension import Command
from lcpanel.hookspecs import hookimpl

BUILTINS = {"lcformats", "collection_commands", "api", "web"}


def install_fake_distribution(tmp_path, monkeypatch, module_name: str, source: str, ep_name: str):
    """Make an installed distribution whose ``lcpanel`` entry point names ``module_name``:
    the same discovery path pip-installed plugins take."""
    (tmp_path / f"{module_name}.py").write_text(textwrap.dedent(source))
    dist = tmp_path / f"{module_name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module_name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[lcpanel]\n{ep_name} = {module_name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(module_name, None)


def test_builtins_are_found_through_entry_points():
    app = App()
    assert BUILTINS <= set(app.plugin_names())
    assert {"astrobase", "lcc-description"} <= set(app.lc_formats.names())
    assert {"init", "add-collection", "collections", "serve"} <= set(app.commands.names())
    assert app.commands.owner("init") == "collection_commands"


def test_third_party_plugin_registered_like_a_builtin(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "lcp_sample_plugin", """
        from lcpanel.hookspecs import hookimpl
        from lcpanel.extension import Command

        @hookimpl
        def register_commands(app):
            return [Command("hello", "say hello", lambda p: None, lambda args: print("hello from a plugin") or 0)]

        events = []

        @hookimpl
        def startup(app):
            events.append("started")
    """, "sample")
    app = App()
    assert "sample" in app.plugin_names()
    assert app.commands.owner("hello") == "sample"
    app.start()
    import lcp_sample_plugin

    assert lcp_sample_plugin.events == ["started"]
    # the CLI sees it too, in a fresh process
    env_path = f"{tmp_path}"
    out = subprocess.run([sys.executable, "-m", "lcpanel", "hello"], capture_output=True, text=True,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "hello from a plugin" in out.stdout


def test_misspelled_hook_fails_at_startup():
    class Typo:
        @hookimpl
        def register_serach_backends(self, app):
            return []

    with pytest.raises(PluginError, match="register_serach_backends"):
        App(plugins=(Typo(),))


def test_misspelled_hook_fails_the_cli(tmp_path, monkeypatch):
    install_fake_distribution(tmp_path, monkeypatch, "lcp_typo_plugin", """
        from lcpanel.hookspecs import hookimpl

        @hookimpl
        def startup(app, extra_argument):
            pass
    """, "typo")
    out = subprocess.run([sys.executable, "-m", "lcpanel", "plugins"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 3
    assert "typo" in out.stderr and "extra_argument" in out.stderr


def test_duplicate_names_are_an_error_and_deny_replaces_a_builtin():
    class Other:
        @hookimpl
        def register_commands(self, app):
            return [Command("init", "my own init", lambda p: None, lambda a: 0)]

    with pytest.raises(PluginError, match="'init' is registered twice"):
        App(plugins=(Other(),))
    config = Config(plugins=PluginSettings(deny=("collection_commands",)))
    app = App(config=config, plugins=(Other(),))
    assert app.commands.get("init").help == "my own init"
    assert "collections" not in app.commands


def test_allow_list_loads_only_named_plugins():
    app = App(config=Config(plugins=PluginSettings(allow=("lcformats",))))
    assert set(app.plugin_names()) & BUILTINS == {"lcformats"}
    assert len(app.commands) == 0


def test_apps_do_not_share_plugins():
    class Extra:
        @hookimpl
        def register_commands(self, app):
            return [Command("extra", "extra", lambda p: None, lambda a: 0)]

    with_extra = App(plugins=(Extra(),))
    plain = App()
    assert "extra" in with_extra.commands and "extra" not in plain.commands


def test_unknown_name_suggests_the_closest():
    with pytest.raises(NotFound, match="did you mean 'astrobase'"):
        App().lc_formats.get("astrobse")


def test_register_hook_must_return_a_list():
    class Bad:
        @hookimpl
        def register_routes(self, app):
            return "not a list"

    with pytest.raises(PluginError, match="must return a list"):
        App(plugins=(Bad(),))


def test_failing_event_listener_is_logged_not_raised(caplog):
    class Boom:
        @hookimpl
        def dataset_deleted(self, app, dataset_id):
            raise RuntimeError("listener bug")

    App(plugins=(Boom(),)).notify("dataset_deleted", dataset_id="x")
    assert "listener bug" in caplog.text


def test_core_never_imports_panel():
    code = ("import sys, pkgutil, importlib, lcpanel.core;"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(lcpanel.core.__path__, 'lcpanel.core.')];"
            "bad = [m for m in ('panel', 'bokeh', 'holoviews') if m in sys.modules];"
            "sys.exit(', '.join(bad) or None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
