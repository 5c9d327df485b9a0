"""The written plugin contract is checked: every hook is documented with its arguments,
hook docstrings name things that exist, contrib plugins import only the public API, core
imports nothing from the layers above it, and the catalog base states what a catalog is."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import lcpanel.plugin_api as plugin_api
from lcpanel import hookspecs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "writing-plugins.md"
#: core may import only itself, the errors, the settings types and the version
CORE_MAY_IMPORT = ("lcpanel.core", "lcpanel.errors", "lcpanel.config")
CORE_MUST_NOT_IMPORT = ("lcpanel.app", "lcpanel.plugins", "lcpanel.views", "lcpanel.registry", "lcpanel.server",
                        "lcpanel.cli", "lcpanel.jsonapi", "lcpanel.plugin_api")


def hook_specs() -> dict[str, list[str]]:
    """Every hook name with its arguments, from the spec module."""
    return {name: list(inspect.signature(fn).parameters)
            for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")}


def test_there_are_hooks():
    assert {"register_search_backends", "open_catalog", "dataset_frozen", "product_built"} <= set(hook_specs())


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_plugin_hooks_are_documented(hook):
    """datasette's rule: each hook has a heading in the plugin guide naming it with its
    arguments, e.g. ### `dataset_updated(app, dataset, changes)`."""
    headings = [line for line in DOCS.read_text().splitlines() if line.startswith("### ")]
    signature = f"`{hook}({', '.join(hook_specs()[hook])})`"
    assert any(signature in h for h in headings), f"no heading in {DOCS.name} shows {signature}"


def _dotted_names(text: str) -> set[str]:
    return {m.rstrip(".") for m in re.findall(r"\blcpanel(?:\.\w+)+", text)}


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_hook_docstrings_name_what_exists():
    """``lcpanel.core.collections.CollectionInfo`` in a docstring, when it lives in
    core/basedir.py, misleads every plugin author."""
    texts = [hookspecs.__doc__] + [getattr(hookspecs, h).__doc__ for h in hook_specs()]
    names = set().union(*(_dotted_names(t or "") for t in texts))
    assert names, "the hook docstrings name no lcpanel objects"
    assert [n for n in sorted(names) if not _resolves(n)] == []


def test_hook_docstrings_name_the_methods_plugins_implement():
    from lcpanel.core.catalogs.catalog import CatalogBase
    from lcpanel.core.objects.lcformats import LCFormat
    from lcpanel.core.products import ProductBuilder
    from lcpanel.core.search import SearchBackend

    for hook, cls in (("register_search_backends", SearchBackend), ("register_product_builders", ProductBuilder),
                      ("register_lc_formats", LCFormat), ("open_catalog", CatalogBase)):
        doc = getattr(hookspecs, hook).__doc__
        methods = re.findall(r"``(\w+)\(", doc) + re.findall(r"a ``(\w+)`` (?:method|constructor|function)", doc)
        assert methods, hook
        for method in methods:
            assert hasattr(cls, method), f"{hook} docstring names {cls.__name__}.{method}, which does not exist"


# --- the public API -----------------------------------------------------------------------------


def test_every_public_name_resolves():
    for name in plugin_api.__all__:
        assert getattr(plugin_api, name) is not None, name
    with pytest.raises(AttributeError, match="public names"):
        plugin_api.Viewer  # noqa: B018


def _lcpanel_imports(path: Path):
    """(line, module, name) of every import of an lcpanel module in ``path`` (any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lcpanel" or alias.name.startswith("lcpanel."):
                    yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "lcpanel" or node.module.startswith("lcpanel."):
                for alias in node.names:
                    yield node.lineno, node.module, alias.name


def _python_files(*roots: Path):
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if not any(part.endswith(".egg-info") or part in ("build", ".venv") for part in path.parts):
                yield path


def test_contrib_plugins_import_only_the_public_api():
    public = set(plugin_api.__all__)
    bad = []
    for path in _python_files(ROOT / "plugins_contrib", ROOT / "examples"):
        for line, module, name in _lcpanel_imports(path):
            if module != "lcpanel.plugin_api" or name not in public:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}{'.' + name if name else ''}")
    assert bad == []


def test_the_contract_check_sees_private_imports(tmp_path):
    """The check above would catch what the contrib plugins used to do."""
    (tmp_path / "old.py").write_text("from lcpanel.core.catalogs.ingest import _slug\n"
                                     "def f():\n    from lcpanel.plugin_api import _pairs_within\n")
    found = list(_lcpanel_imports(tmp_path / "old.py"))
    assert [(m, n) for _, m, n in found] == [("lcpanel.core.catalogs.ingest", "_slug"), ("lcpanel.plugin_api", "_pairs_within")]
    assert "_pairs_within" not in plugin_api.__all__


# --- import direction -----------------------------------------------------------------------------


def _absolute_imports(path: Path, package: str):
    """Every module ``path`` imports (relative imports resolved against ``package``), with
    ``from X import name`` also giving ``X.name`` (it may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def core_violations(core_dir: Path) -> list[str]:
    bad = []
    for path in _python_files(core_dir):
        rel = path.relative_to(core_dir.parent.parent)
        package = ".".join(rel.with_suffix("").parts[:-1])
        for line, module in _absolute_imports(path, package):
            if not (module == "lcpanel" or module.startswith("lcpanel.")):
                continue
            if any(module == m or module.startswith(m + ".") for m in CORE_MUST_NOT_IMPORT):
                bad.append(f"{rel}:{line}: {module}")
            elif module not in ("lcpanel", "lcpanel.__version__") and \
                    not any(module == m or module.startswith(m + ".") for m in CORE_MAY_IMPORT):
                bad.append(f"{rel}:{line}: {module}")
    return bad


def test_core_imports_nothing_from_the_layers_above():
    assert core_violations(ROOT / "lcpanel" / "core") == []


def test_the_import_direction_check_sees_relative_imports(tmp_path):
    core = tmp_path / "lcpanel" / "core"
    core.mkdir(parents=True)
    (core / "bad.py").write_text("from ..registry import did_you_mean\n"
                                 "def f():\n    from ..app import App\n    from .. import views\n"
                                 "from ..errors import UserError\nfrom .search import run_search\n")
    assert core_violations(core) == ["lcpanel/core/bad.py:1: lcpanel.registry",
                                     "lcpanel/core/bad.py:1: lcpanel.registry.did_you_mean",
                                     "lcpanel/core/bad.py:3: lcpanel.app", "lcpanel/core/bad.py:3: lcpanel.app.App",
                                     "lcpanel/core/bad.py:4: lcpanel.views"]


# --- the catalog base ------------------------------------------------------------------------------


def test_catalog_base_is_abstract_and_the_sqlite_catalog_implements_it():
    from lcpanel.core.catalogs.catalog import Catalog, CatalogBase

    assert issubclass(Catalog, CatalogBase)
    assert CatalogBase.__abstractmethods__ == {"skyindex", "fetch_values", "passing", "select"}

    class Half(CatalogBase):
        def fetch_values(self, row_ids, names):
            return []

    with pytest.raises(TypeError, match="abstract"):
        Half(None, None)


def test_a_catalog_without_sql_says_which_searches_it_answers(basedir, tmp_path):
    """A sibling catalog inherits ``top``/``fetch_rows`` and a clear answer to SQL."""
    from support.data import random_catalog, write_table

    from lcpanel.app import App
    from lcpanel.core.catalogs.catalog import CatalogBase
    from lcpanel.core.catalogs.ingest import add_catalog_collection
    from lcpanel.errors import UserError

    cols = random_catalog(30, seed=5, center=(10.0, 5.0), radius_deg=1.0)
    info = add_catalog_collection(App(basedir.path), basedir, write_table(cols, tmp_path / "f.parquet"),
                                  show_progress=False)

    class Listed(CatalogBase):
        """Rows held in a list: row id = index."""

        skyindex = None

        def fetch_values(self, row_ids, names):
            return [tuple(cols[n][int(r)].item() for n in names) for r in row_ids]

        def passing(self, row_ids, flt):
            return np.ones(len(row_ids), dtype=bool)

        def select(self, flt, sort, limit):
            return list(range(min(limit, 30))), 30

    cat = Listed(info, None)
    order = cat.top(list(range(30)), {}, [("vmag", "DESC")], 5)
    assert order == list(np.argsort(-cols["vmag"], kind="stable")[:5])
    assert cat.fetch_rows([3], ["objectid"]) == [{"objectid": cols["objectid"][3]}]
    with pytest.raises(UserError, match="CATALOG catalog: it answers cone, cross-match and column-filter"):
        cat.query("SELECT 1")
