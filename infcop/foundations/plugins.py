"""Importing code from outside the package: method and criterion files named by `study.plugins`, a
study directory's own `baselines/`, and installed packages' entry points. This module knows no
registry; infcop/methods/registry.py and infcop/criteria/ decide what a plugin must register.

Every failure is one ConfigError line that names the file or entry point.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

from infcop.foundations.config import ConfigError


def display(path: Path) -> str:
    """`path` relative to the working directory when it lies under it, else absolute."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def plugin_files(path: Path, key: str) -> list[Path]:
    """The Python files a plugin path names: the file itself, or every `*.py` of a folder whose name
    does not start with `_` (a folder's helpers and templates stay out)."""
    if path.is_file() and path.suffix == ".py":
        return [path.resolve()]
    if path.is_dir():
        return sorted(p.resolve() for p in path.glob("*.py") if not p.name.startswith("_"))
    where = "" if path.is_absolute() else f" (relative to the working directory {Path.cwd()})"
    raise ConfigError(f"{key}: {path}{where} is neither a .py file nor a folder")


def import_file(path: Path) -> ModuleType:
    """Import one file as a module of its own, named after its path so two `my.py` never collide."""
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    name = f"infcop_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        del sys.modules[name]
        if not isinstance(err, Exception):  # Ctrl-C or sys.exit() is not a broken plugin
            raise
        raise PluginError(display(path), err) from err
    return module


def entry_point_label(ep: EntryPoint) -> str:
    """`entry point DIST:NAME`: how errors and `infcop methods` name an entry point."""
    return f"entry point {ep.dist.name if ep.dist else '?'}:{ep.name}"


def load_entry_point(ep: EntryPoint) -> None:
    """Import an entry point's module (its value: `module` or `module:attribute`)."""
    try:
        ep.load()
    except Exception as err:
        raise PluginError(f"{entry_point_label(ep)} ({ep.value})", err) from err


@functools.cache  # scanning every installed distribution takes ~0.1 s; they do not change in a run
def group(name: str) -> tuple[EntryPoint, ...]:
    """The installed entry points of a group, in a stable order."""
    return tuple(sorted(entry_points(group=name), key=entry_point_label))


class PluginError(ConfigError):
    """A plugin that cannot be imported: one line naming it and what went wrong."""

    def __init__(self, where: str, problem: str | BaseException):
        if isinstance(problem, BaseException):
            words = f"{type(problem).__name__}: {problem}".split()
            problem = "cannot load plugin: " + " ".join(words)
        super().__init__(f"{where}: {problem}")
