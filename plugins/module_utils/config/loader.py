# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the Phoenix config files and checking them against their JSON Schemas.

Schema validation has a fast path: each schema is compiled once with
fastjsonschema (when installed), and only a document that the fast validator
rejects is walked by jsonschema, which reports every violation at once.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import pointer
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.schemas import SCHEMAS

try:
    import jsonschema
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - reported by the callers
    jsonschema = None
    HAS_JSONSCHEMA = False

try:
    import fastjsonschema
    HAS_FASTJSONSCHEMA = True
except ImportError:  # pragma: no cover - optional speed-up
    fastjsonschema = None
    HAS_FASTJSONSCHEMA = False

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None
    HAS_YAML = False

_FAST = {}
_FULL = {}


class DuplicateKeys:
    """object_pairs_hook that keeps the JSON order and records repeated keys."""

    def __init__(self):
        self.duplicates = []

    def __call__(self, pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                self.duplicates.append(key)
            obj[key] = value
        return obj


def read_json(path, name, report):
    """Parse one JSON file. Returns None (and records an error) when it cannot be used."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        report.error(name, '/', 'cannot read %s: %s' % (path, exc.strerror or exc), 'file.unreadable')
        return None
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        report.error(name, '/', 'not UTF-8 text (byte %d)' % exc.start, 'file.encoding')
        return None
    hook = DuplicateKeys()
    try:
        data = json.loads(text, object_pairs_hook=hook)
    except ValueError as exc:
        line = getattr(exc, 'lineno', None)
        col = getattr(exc, 'colno', None)
        msg = getattr(exc, 'msg', str(exc))
        where = 'line %s column %s: ' % (line, col) if line else ''
        report.error(name, '/', 'invalid JSON: %s%s' % (where, msg), 'file.json')
        return None
    for key in sorted(set(hook.duplicates)):
        report.error(name, '/', 'key "%s" appears more than once in one object; only the last value would be used'
                     % key, 'file.duplicate_key')
    return data


def read_yaml(path, name, report):
    """Parse a YAML file (stack compose files)."""
    if not HAS_YAML:
        report.error(name, '/', 'PyYAML is required to read compose files', 'dependency.yaml')
        return None
    try:
        with open(path, 'r') as handle:
            loader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
            return yaml.load(handle, Loader=loader)  # noqa: S506 - safe loader
    except (IOError, OSError) as exc:
        report.error(name, '/', 'cannot read %s: %s' % (path, exc.strerror or exc), 'file.unreadable')
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = 'line %d column %d: ' % (mark.line + 1, mark.column + 1) if mark is not None else ''
        problem = getattr(exc, 'problem', None) or str(exc)
        report.error(name, '/', 'invalid YAML: %s%s' % (where, problem), 'file.yaml')
    return None


def _full_validator(schema_key):
    validator = _FULL.get(schema_key)
    if validator is None:
        schema = SCHEMAS[schema_key]
        validator = jsonschema.Draft7Validator(schema)
        _FULL[schema_key] = validator
    return validator


def _fast_validator(schema_key):
    if not HAS_FASTJSONSCHEMA:
        return None
    validator = _FAST.get(schema_key)
    if validator is None:
        validator = fastjsonschema.compile(SCHEMAS[schema_key])
        _FAST[schema_key] = validator
    return validator


def _describe(error):
    """A readable message for one jsonschema error, descending into anyOf/oneOf branches."""
    if error.context:
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None and best.message:
            return best.message, list(best.absolute_path)
    return error.message, list(error.absolute_path)


def validate_schema(data, schema_key, name, report):
    """Validate a document against a shipped schema; record every violation. Returns True when valid."""
    if not HAS_JSONSCHEMA:
        report.error(name, '/', 'the Python library "jsonschema" is required (pip install jsonschema)',
                     'dependency.jsonschema')
        return False
    fast = _fast_validator(schema_key)
    if fast is not None:
        try:
            fast(data)
            return True
        except fastjsonschema.JsonSchemaException:
            pass
    errors = list(_full_validator(schema_key).iter_errors(data))
    for error in errors:
        message, path = _describe(error)
        report.error(name, pointer(*path), message, 'schema.%s' % error.validator)
    return not errors


def find_config_file(config_dir, name):
    path = os.path.join(config_dir, name)
    return path if os.path.isfile(path) else None
