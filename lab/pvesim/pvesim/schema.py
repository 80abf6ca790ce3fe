"""The PVE API schema (apidoc.json): path resolution and parameter validation.

The schema tree is here; the checks and property strings are in validation.py (their names are also
exported here).

Validation follows PVE's JSONSchema checker: same order of checks, same error texts,
errors keyed by parameter name (``net0``) or sub-key path (``net0.ip``).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from urllib.parse import unquote

from .validation import (
    ParamError, PropertyStringError, guest_kind, lookup_property, parse_property_string, print_property_string,
    validate_params, validate_reply,
)


__all__ = [
    "ApiSchema",
    "ParamError",
    "PropertyStringError",
    "default_apidoc_path",
    "load_apidoc",
    "parse_property_string",
    "print_property_string",
    "validate_params",
    "validate_reply",
]

PACKAGE_DIR = Path(__file__).resolve().parent
SUBSET_PATH = PACKAGE_DIR / "apidoc-subset.json.gz"


def default_apidoc_path(repo_root: Path | None = None) -> Path:
    """The apidoc to use: $PHOENIX_PVE_APIDOC, ../shared/pve/apidoc.json, else the vendored subset."""
    env = os.environ.get("PHOENIX_PVE_APIDOC")
    if env:
        return Path(env)
    if repo_root is None:
        repo_root = PACKAGE_DIR.parents[2]
    shared = repo_root.parent / "shared" / "pve" / "apidoc.json"
    if shared.is_file():
        return shared
    return SUBSET_PATH


def load_apidoc(path: str | os.PathLike) -> list:
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return json.load(fh)
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class _Node:
    __slots__ = ("literal", "var", "var_name", "path", "info")

    def __init__(self):
        self.literal: dict[str, _Node] = {}
        self.var: _Node | None = None
        self.var_name: str | None = None
        self.path: str | None = None
        self.info: dict = {}


class ApiSchema:
    """The apidoc tree, indexed for request resolution."""

    def __init__(self, apidoc: list, source: str = ""):
        self.source = source
        self.apidoc = apidoc
        self.root = _Node()
        self.paths: dict[str, dict] = {}
        for top in apidoc:
            self._add(top)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> ApiSchema:
        path = Path(path) if path else default_apidoc_path()
        return cls(load_apidoc(path), source=str(path))

    def _add(self, entry: dict):
        path = entry["path"]
        node = self.root
        for seg in [s for s in path.split("/") if s]:
            if seg.startswith("{") and seg.endswith("}"):
                if node.var is None:
                    node.var = _Node()
                    node.var_name = seg[1:-1]
                node = node.var
            else:
                node = node.literal.setdefault(seg, _Node())
        node.path = path
        node.info = entry.get("info") or {}
        self.paths[path] = node.info
        for child in entry.get("children") or []:
            self._add(child)

    def resolve(self, rel_path: str):
        """Map a concrete path to (template, info, path_params), or None."""
        segments = [unquote(s) for s in rel_path.split("/") if s]
        found = self._match(self.root, segments, {})
        if found is None:
            return None
        node, params = found
        return node.path, node.info, params

    def _match(self, node: _Node, segments: list[str], params: dict):
        if not segments:
            return (node, params) if node.path is not None else None
        head, rest = segments[0], segments[1:]
        child = node.literal.get(head)
        if child is not None:
            found = self._match(child, rest, params)
            if found is not None:
                return found
        if node.var is not None:
            found = self._match(node.var, rest, {**params, node.var_name: head})
            if found is not None:
                return found
        return None

    def method_info(self, template: str, method: str) -> dict | None:
        return (self.paths.get(template) or {}).get(method)

    def parameters(self, template: str, method: str) -> dict:
        info = self.method_info(template, method) or {}
        return info.get("parameters") or {}

    def property_schema(self, template: str, method: str, name: str) -> dict | None:
        """The schema of one parameter, mapping `net0` to `net[n]`."""
        props = self.parameters(template, method).get("properties") or {}
        return lookup_property(props, name, guest_kind(template))
