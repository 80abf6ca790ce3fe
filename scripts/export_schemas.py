#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, ThinkHeads
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the config JSON Schemas to etc/schemas/*.schema.json.

The schemas are defined in plugins/module_utils/config/schemas.py; the files
under etc/schemas/ are generated from it so that editors and other tools can
use them. Each file is named after the schema's $id.

    python3 scripts/export_schemas.py           # (re)write the files
    python3 scripts/export_schemas.py --check   # exit 1 if any file is stale
"""

import argparse
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS_PY = os.path.join(ROOT, "plugins", "module_utils", "config", "schemas.py")
OUT_DIR = os.path.join(ROOT, "etc", "schemas")


def load_schemas(path=SCHEMAS_PY):
    spec = importlib.util.spec_from_file_location("phoenix_config_schemas", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SCHEMAS


def rendered(schemas):
    """Map output path -> file text for every schema."""
    files = {}
    for config_name, schema in schemas.items():
        file_name = schema["$id"].rsplit("/", 1)[-1]
        if file_name in (os.path.basename(p) for p in files):
            raise SystemExit("two schemas export to %s (%s)" % (file_name, config_name))
        text = json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        files[os.path.join(OUT_DIR, file_name)] = text
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 and list the files that are missing or differ",
    )
    args = parser.parse_args(argv)

    files = rendered(load_schemas())
    stale = []
    for path, text in sorted(files.items()):
        current = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        if current != text:
            stale.append(path)
    extra = []
    if os.path.isdir(OUT_DIR):
        extra = sorted(
            os.path.join(OUT_DIR, name)
            for name in os.listdir(OUT_DIR)
            if name.endswith(".schema.json") and os.path.join(OUT_DIR, name) not in files
        )

    if args.check:
        for path in stale:
            print("stale: %s" % os.path.relpath(path, ROOT))
        for path in extra:
            print("not generated: %s" % os.path.relpath(path, ROOT))
        if stale or extra:
            print("run: python3 scripts/export_schemas.py", file=sys.stderr)
            return 1
        return 0

    os.makedirs(OUT_DIR, exist_ok=True)
    for path in stale:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(files[path])
        print("wrote %s" % os.path.relpath(path, ROOT))
    for path in extra:
        print("warning: %s is not generated from schemas.py" % os.path.relpath(path, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
