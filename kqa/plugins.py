"""A typed facade over pluggy's plugin manager (the tox pattern).

Plugins come from the ``kqa`` entry-point group, built-ins included. Loading is defensive: a
plugin that fails to import, or raises inside a hook, is recorded in :attr:`Plugins.failures`
and skipped, so one broken plugin never takes kqa down. ``KQA_PLUGINS`` (comma-separated
entry-point names) is an allow-list; ``KQA_PLUGINS_BLOCK`` a block-list.
"""

from __future__ import annotations

import importlib.metadata
import threading
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import pluggy

from kqa import hookspecs
from kqa.config import env_list
from kqa.errors import NotFoundError

ENTRY_POINT_GROUP = "kqa"


@dataclass
class PluginFailure:
    """A plugin that could not be used, and why (shown by ``kqa plugins``)."""

    plugin: str
    stage: str  # "import" or the hook name
    error: str
    detail: str = ""


@dataclass
class PluginInfo:
    """What ``kqa plugins`` prints for one plugin."""

    name: str
    module: str
    version: str | None
    distribution: str | None
    hooks: list[str]
    adds: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Plugins:
    """The loaded plugins and what they registered.

    Use :func:`get_plugins` for the process-wide instance. Tests may build their own with
    ``Plugins(load_entrypoints=False)`` and :meth:`register` a throwaway plugin object.
    """

    def __init__(self, load_entrypoints: bool = True) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self._dists: dict[str, tuple[str | None, str | None]] = {}
        self._collected: dict[str, dict[str, Any]] | None = None
        self._owners: dict[tuple[str, str], str] = {}
        self._lock = threading.RLock()
        if load_entrypoints:
            self._load_entrypoints()

    # -- discovery -------------------------------------------------------------------------
    def _load_entrypoints(self) -> None:
        allow = env_list("KQA_PLUGINS")
        block = set(env_list("KQA_PLUGINS_BLOCK") or [])
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (allow is not None and ep.name not in allow) or ep.name in block:
                continue
            if self.pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin is reported, not fatal
                self._fail(ep.name, "import", exc)
                continue
            dist = ep.dist
            self._dists[ep.name] = (dist.name if dist else None, dist.version if dist else None)
            self.register(module, name=ep.name)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object or module; misspelled hooks fail loudly."""
        with self._lock:
            registered = self.pm.register(plugin, name=name)
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError:
                self.pm.unregister(plugin)
                raise
            self._collected = None
            return registered or (name or repr(plugin))

    def unregister(self, name: str) -> None:
        with self._lock:
            self.pm.unregister(name=name)
            self._collected = None

    def _fail(self, plugin: str, stage: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
        self.failures.append(PluginFailure(plugin, stage, f"{type(exc).__name__}: {exc}", detail))

    # -- collection ------------------------------------------------------------------------
    def _collect(self, hook_name: str, key: Callable[[Any], str]) -> dict[str, Any]:
        """Call one register-style hook plugin by plugin, isolating failures."""
        found: dict[str, Any] = {}
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):  # registration order
            added: list[Any] = []
            try:
                impl.function(**self._hook_kwargs(hook_name, added))
            except Exception as exc:
                self._fail(impl.plugin_name, hook_name, exc)
                continue
            for item in added:
                found[key(item)] = item
                self._owners[(hook_name, key(item))] = impl.plugin_name
        return found

    @staticmethod
    def _hook_kwargs(hook_name: str, added: list[Any]) -> dict[str, Any]:
        return {"register": added.append}

    def _all(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            if self._collected is None:
                self.failures = [f for f in self.failures if f.stage == "import"]
                self._owners.clear()
                self._collected = {
                    "register_loaders": self._collect("register_loaders", lambda x: x.name),
                    "register_encoders": self._collect("register_encoders", lambda x: x.name),
                    "register_fusions": self._collect("register_fusions", lambda x: x.name),
                }
            return self._collected

    def loaders(self) -> dict[str, Any]:
        """Format name → loader."""
        return dict(self._all()["register_loaders"])

    def encoders(self) -> dict[str, Any]:
        """Encoder name → :class:`kqa.encode.EncoderSpec`."""
        return dict(self._all()["register_encoders"])

    def fusions(self) -> dict[str, Any]:
        """Fusion name → :class:`kqa.fuse.FusionSpec`."""
        return dict(self._all()["register_fusions"])

    def fusion(self, name: str) -> Any:
        fusions = self.fusions()
        if name not in fusions:
            raise NotFoundError(f"no fusion strategy {name!r}; available: {', '.join(sorted(fusions))}")
        return fusions[name]

    def encoder_spec(self, name: str) -> Any:
        encoders = self.encoders()
        if name not in encoders:
            raise NotFoundError(f"no encoder {name!r}; available: {', '.join(sorted(encoders))}")
        return encoders[name]

    def add_commands(self, cli: Any) -> None:
        """Let plugins add CLI sub-commands; a failing one is reported, not fatal."""
        for impl in reversed(self.pm.hook.register_commands.get_hookimpls()):
            try:
                impl.function(cli=cli)
            except Exception as exc:
                self._fail(impl.plugin_name, "register_commands", exc)

    # -- reporting -------------------------------------------------------------------------
    def info(self) -> list[PluginInfo]:
        """Every plugin with version, hooks, what it adds and its errors."""
        collected = self._all()
        labels = {"register_loaders": "loaders", "register_encoders": "encoders",
                  "register_fusions": "fusions"}
        rows: dict[str, PluginInfo] = {}
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            dist, version = self._dists.get(name, (None, None))
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__qualname__
            rows[name] = PluginInfo(name, module, version, dist, hooks)
        for (hook_name, item), owner in self._owners.items():
            if owner in rows and hook_name in collected:
                rows[owner].adds.setdefault(labels[hook_name], []).append(item)
        for failure in self.failures:
            row = rows.setdefault(failure.plugin, PluginInfo(failure.plugin, "?", None, None, []))
            row.errors.append(f"{failure.stage}: {failure.error}")
        for row in rows.values():
            for items in row.adds.values():
                items.sort()
        return sorted(rows.values(), key=lambda r: r.name)


_plugins: Plugins | None = None
_plugins_lock = threading.Lock()


def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded from entry points on first use."""
    global _plugins
    with _plugins_lock:
        if _plugins is None:
            _plugins = Plugins()
        return _plugins


def reset_plugins() -> None:
    """Forget the loaded plugins (tests, or after ``KQA_PLUGINS`` changes)."""
    global _plugins
    with _plugins_lock:
        _plugins = None
