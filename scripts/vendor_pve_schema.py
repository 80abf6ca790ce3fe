#!/usr/bin/env python
"""Write lab/pvesim/pvesim/apidoc-subset.json.gz from the official PVE API schema.

The subset keeps only the paths and methods pvesim implements (plus their ancestors, so the
tree still resolves), with their parameter and return (`returns`) schemas, and drops
documentation-only fields (descriptions, type texts, permissions). pvesim falls back to it
when ../shared/pve/apidoc.json is absent, so its tests (and its strict reply check) run anywhere.

    python scripts/vendor_pve_schema.py [--apidoc ../shared/pve/apidoc.json] [--check]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "lab", "pvesim"))

from pvesim.routes import implemented_paths  # noqa: E402

OUTPUT = os.path.join(REPO, "lab", "pvesim", "pvesim", "apidoc-subset.json.gz")
DEFAULT_APIDOC = os.path.join(REPO, "..", "shared", "pve", "apidoc.json")
DOC_ONLY = {"description", "verbose_description", "typetext", "format_description", "title", "links", "renderer",
            "print_width", "completion"}
METHOD_DOC_ONLY = {"description", "permissions", "name", "method"}


def strip(schema):
    """Drop doc-only keys of a schema; maps of named properties keep every name."""
    if isinstance(schema, list):
        return [strip(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in DOC_ONLY:
            continue
        if key in ("properties", "format") and isinstance(value, dict):
            out[key] = {name: strip(sub) for name, sub in value.items()}
        else:
            out[key] = strip(value)
    return out


def subset(nodes: list, wanted: dict[str, set[str]]) -> list:
    out = []
    for node in nodes:
        path = node["path"]
        children = subset(node.get("children") or [], wanted)
        methods = wanted.get(path, set())
        if not methods and not children:
            continue
        info = {}
        for method in sorted(methods):
            if method in (node.get("info") or {}):
                entry = {k: v for k, v in node["info"][method].items() if k not in METHOD_DOC_ONLY}
                info[method] = strip(entry)
        item = {"path": path, "text": node.get("text"), "leaf": 0 if children else 1, "info": info}
        if children:
            item["children"] = children
        out.append(item)
    return out


def render(apidoc_path: str) -> bytes:
    with open(apidoc_path, encoding="utf-8") as fh:
        apidoc = json.load(fh)
    data = json.dumps(subset(apidoc, implemented_paths()), sort_keys=True, separators=(",", ":")).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apidoc", default=os.environ.get("PHOENIX_PVE_APIDOC") or DEFAULT_APIDOC)
    parser.add_argument("--output", default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="fail if the committed subset is out of date")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.apidoc):
        print(f"no apidoc at {args.apidoc}", file=sys.stderr)
        return 2
    blob = render(args.apidoc)
    if args.check:
        current = open(args.output, "rb").read() if os.path.isfile(args.output) else b""
        if gzip.decompress(current or gzip.compress(b"")) != gzip.decompress(blob):
            print(f"{args.output} is out of date: run scripts/vendor_pve_schema.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    with open(args.output, "wb") as fh:
        fh.write(blob)
    print(f"wrote {args.output} ({len(blob)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
