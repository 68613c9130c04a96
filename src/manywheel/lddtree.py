"""Renderings of a :class:`~manywheel.ld.DependencyTree`: a JSON-able dict and plain text.

The dict follows ``schemas/lddtree.schema.json`` (``schema_version`` 1); the text is a
rendering of the same data, one line per DT_NEEDED entry, indented by depth::

    libfoo.so.1 => /opt/x/libfoo.so.1 [runpath of _ext.so]
      libbar.so.2 => not found (tried: /opt/x/libbar.so.2 (missing), ...)
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from manywheel.ld import Attempt, DependencyTree, LoadedObject, Resolution, Rule

__all__ = ["SCHEMA_VERSION", "load_schema", "render_tree", "tree_to_json"]

SCHEMA_VERSION = 1


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) the output of :func:`tree_to_json` follows."""
    text = resources.files("manywheel").joinpath("schemas/lddtree.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _rule(rule: Rule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {
        "kind": rule.kind,
        "owner": rule.owner,
        "entry": rule.entry,
        "inherited": rule.inherited,
        "text": rule.describe(),
    }


def _attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "path": attempt.path,
        "rule": _rule(attempt.rule),
        "result": attempt.result,
        "detail": attempt.detail,
    }


def _object(obj: LoadedObject) -> dict[str, Any]:
    return {
        "path": obj.path,
        "realpath": obj.realpath,
        "host_path": obj.host_path,
        "soname": obj.soname,
        "needed": list(obj.needed),
        "rpath": obj.rpath,
        "runpath": obj.runpath,
        "nodeflib": obj.nodeflib,
        "elf_class": obj.elf_class,
        "byte_order": obj.byte_order,
        "machine": obj.machine,
        "arch": obj.arch,
        "osabi": obj.osabi,
        "elf_type": obj.elf_type,
        "interpreter": obj.interpreter,
    }


def _node(node: Resolution) -> dict[str, Any]:
    return {
        "name": node.name,
        "status": node.status,
        "path": node.path,
        "realpath": node.realpath,
        "rule": _rule(node.rule),
        # Facts of the file only where it is loaded; a reuse points at it by path.
        "object": _object(node.obj) if node.obj is not None and node.status == "found" else None,
        "tried": [_attempt(a) for a in node.tried],
        "error": node.error,
        "loaded_by": node.loaded_by,
        "own_search": node.own_search,
        "notes": list(node.notes),
        "dependencies": [_node(child) for child in node.children],
    }


def tree_to_json(tree: DependencyTree) -> dict[str, Any]:
    """The tree as plain JSON data (dicts, lists, strings, numbers, booleans, null)."""
    setup = tree.setup
    return {
        "schema_version": SCHEMA_VERSION,
        "root": _object(tree.root),
        "loader": {
            "libc": setup.libc,
            "sysroot": setup.sysroot,
            "library_path": list(setup.library_path),
            "extra_paths": list(setup.extra_paths),
            "ldpaths": list(setup.ldpaths) if setup.ldpaths is not None else None,
            "platform": setup.platform,
            "lib": setup.lib,
            "cache_file": setup.cache_file,
            "cache_status": setup.cache_status,
            "conf_files": list(setup.conf_files),
            "conf_dirs": list(setup.conf_dirs),
            "system_dirs": list(setup.system_dirs),
            "musl_path_file": setup.musl_path_file,
            "musl_dirs": list(setup.musl_dirs),
            "problems": list(setup.problems),
        },
        "interpreter": _node(tree.interpreter) if tree.interpreter is not None else None,
        "dependencies": [_node(node) for node in tree.dependencies],
        "unresolved": sorted({node.name for node in tree.unresolved}),
        "notes": list(tree.notes),
    }


def _line(node: Resolution) -> str:
    if node.status == "found":
        text = f"{node.name} => {node.path} [{node.rule.describe() if node.rule else '?'}]"
        rejected = [a for a in node.tried if a.result != "missing"]
        if rejected:
            text += " (skipped: " + ", ".join(f"{a.path} ({a.detail})" for a in rejected) + ")"
    elif node.status == "already-loaded":
        why = node.rule.describe() if node.rule else "already loaded"
        text = f"{node.name} => {node.path or '(loader)'} [{why}]"
    elif node.status == "error":
        text = f"{node.name} => error: {node.error}"
    else:
        tried = ", ".join(f"{a.path} ({a.result}: {a.detail})" for a in node.tried)
        text = f"{node.name} => not found (tried: {tried or 'nowhere'})"
    return text


def render_tree(tree: DependencyTree, *, notes: bool = True) -> str:
    """Plain text: the root, then one line per DT_NEEDED entry, indented by depth."""
    root = tree.root
    setup = tree.setup
    head = [root.path]
    details = [setup.libc, root.arch or f"machine {root.machine}"]
    if tree.interpreter is not None:
        interp = tree.interpreter
        state = "" if interp.status == "found" else f" ({interp.status})"
        details.append(f"interpreter {interp.path}{state}")
    if setup.sysroot:
        details.append(f"sysroot {setup.sysroot}")
    lines = [f"{head[0]} ({', '.join(details)})"]
    lines.extend(f"note: {note}" for note in tree.notes)
    for depth, node in tree.walk():
        indent = "  " * depth
        lines.append(indent + _line(node))
        if notes:
            lines.extend(f"{indent}  note: {note}" for note in node.notes)
    if notes:
        lines.extend(f"note: {problem}" for problem in setup.problems)
    return "\n".join(lines) + "\n"
