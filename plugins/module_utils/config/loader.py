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

import hashlib
import json
import marshal
import os
import re
import sys
import tempfile

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import pointer
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.schemas import PATTERN_HINTS, SCHEMAS

try:
    # jsonschema is slow to import (~0.5 s); it is needed only to explain a document that the
    # fast validator rejected, so only its presence is checked here.
    import importlib.util
    HAS_JSONSCHEMA = importlib.util.find_spec('jsonschema') is not None
except ImportError:  # pragma: no cover
    HAS_JSONSCHEMA = False
jsonschema = None

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

MAX_MESSAGE = 240
_YAML_MERGE_TAG = 'tag:yaml.org,2002:merge'
_FAST = {}
_FULL = {}


class DuplicateKeys:
    """object_pairs_hook that keeps the JSON order and notes whether any object repeats a key."""

    def __init__(self):
        self.found = False

    def __call__(self, pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            self.found = True
        return obj


class _Pairs(list):
    """A JSON object kept as its (key, value) pairs, repeated keys included."""

    __slots__ = ()


def _duplicate_keys(node, path, out):
    """(path of the object, key) for every key repeated in one object, in document order."""
    if isinstance(node, _Pairs):
        seen = set()
        for key, value in node:
            if key in seen and (path, key) not in out:
                out.append((path, key))
            seen.add(key)
            _duplicate_keys(value, path + (key,), out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _duplicate_keys(value, path + (index,), out)
    return out


def find_duplicate_keys(text):
    """Where a JSON text repeats keys. Parses the text a second time, so it is only used after
    the first parse saw a repeated key (the object_pairs_hook does not know where it is)."""
    return _duplicate_keys(json.loads(text, object_pairs_hook=_Pairs), (), [])


def read_text(path, name, report):
    """A config file's text (UTF-8, BOM allowed); None, with an error recorded, when it cannot be read."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except (IOError, OSError) as exc:
        report.error(name, '/', 'cannot read %s: %s' % (path, exc.strerror or exc), 'file.unreadable')
        return None
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        report.error(name, '/', 'not UTF-8 text (byte %d)' % exc.start, 'file.encoding')
        return None


def read_json(path, name, report):
    """Parse one JSON file. Returns None (and records an error) when it cannot be used."""
    text = read_text(path, name, report)
    if text is None:
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
    if hook.found:
        for path, key in find_duplicate_keys(text):
            report.error(name, pointer(*path), 'key "%s" appears more than once in one object; only the last value '
                         'would be used' % key, 'file.duplicate_key')
    return data


if HAS_YAML:
    class ComposeLoader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):  # pylint: disable=too-many-ancestors
        """The safe loader, plus the Compose merge tags !reset and !override (read as plain values)."""

    def _construct_untagged(loader, node):
        """The value of a node as if it had no tag: !reset [] is [], !override {a: 1} is {a: 1}."""
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        tag = loader.resolve(yaml.ScalarNode, node.value, (True, False))
        plain = yaml.ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
        return loader.construct_object(plain, deep=True)

    ComposeLoader.add_constructor('!reset', _construct_untagged)
    ComposeLoader.add_constructor('!override', _construct_untagged)


def _yaml_duplicate_keys(root):
    """(path of the mapping, key, [lines]) for every key repeated in one YAML mapping."""
    out = []
    seen_nodes = set()
    pending = [(root, ())]
    while pending:
        node, path = pending.pop()
        if id(node) in seen_nodes:  # aliases share nodes (and may be recursive)
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines = {}
            children = []
            for key_node, value_node in node.value:
                if key_node.tag == _YAML_MERGE_TAG:
                    continue
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                lines.setdefault(key, []).append(key_node.start_mark.line + 1)
                children.append((value_node, path + (key,)))
            for key, where in lines.items():
                if len(where) > 1:
                    out.append((path, key, where))
            pending.extend(reversed(children))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(reversed([(child, path + (index,)) for index, child in enumerate(node.value)]))
    return out


def read_yaml(path, name, report):
    """Parse a YAML file (stack compose files). Returns None (and records an error) when it cannot be used.

    An empty document reads as an empty mapping. Keys repeated in one mapping are errors (YAML
    keeps the last value silently, docker compose refuses the file), but the document is returned.
    """
    if not HAS_YAML:
        report.error(name, '/', 'PyYAML is required to read compose files', 'library.yaml')
        return None
    text = read_text(path, name, report)
    if text is None:
        return None
    loader = ComposeLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = _yaml_duplicate_keys(node) if node is not None else []
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = 'line %d column %d: ' % (mark.line + 1, mark.column + 1) if mark is not None else ''
        problem = getattr(exc, 'problem', None) or str(exc)
        report.error(name, '/', 'invalid YAML: %s%s' % (where, problem), 'file.yaml')
        return None
    finally:
        loader.dispose()
    for mapping_path, key, lines in duplicates:
        report.error(name, pointer(*mapping_path), 'key "%s" appears more than once in one mapping (lines %s); only '
                     'the last value would be used' % (key, ', '.join(str(n) for n in lines)), 'file.duplicate_key')
    return {} if data is None else data


def _jsonschema():
    global jsonschema
    if jsonschema is None:
        import jsonschema as module
        import jsonschema.exceptions  # noqa: F401 - best_match lives there
        jsonschema = module
    return jsonschema


def _full_validator(schema_key):
    _jsonschema()
    validator = _FULL.get(schema_key)
    if validator is None:
        schema = SCHEMAS[schema_key]
        validator = jsonschema.Draft7Validator(schema)
        _FULL[schema_key] = validator
    return validator


def _cache_dir():
    explicit = os.environ.get('PHOENIX_SCHEMA_CACHE')
    if explicit:
        return explicit
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'thinkheads-phoenix', 'validators')


def _load_cached_validator(schema_key, schema):
    """Compile a schema with fastjsonschema once per schema content and keep the generated module on disk.

    Compiling all schemas takes about a second, which every ansible command would pay; the generated
    code is kept as marshalled bytecode, keyed by the schema, the fastjsonschema version and the
    Python version. Falls back to an in-memory compile when the cache cannot be used.
    """
    text = json.dumps(schema, sort_keys=True)
    tag = '%s\n%s\n%s' % (getattr(fastjsonschema, 'VERSION', ''), sys.version, text)
    digest = hashlib.sha256(tag.encode('utf-8')).hexdigest()[:32]
    directory = _cache_dir()
    path = os.path.join(directory, 'validator-%s.marshal' % digest)
    try:
        try:
            with open(path, 'rb') as handle:
                code_obj = marshal.load(handle)
        except (IOError, OSError, EOFError, ValueError, TypeError):
            source = fastjsonschema.compile_to_code(schema)
            entry = re.search(r'^def (\w+)\(', source, re.M).group(1)  # the root schema's function comes first
            code_obj = compile(source + '\n\nvalidate = %s\n' % entry, path, 'exec')
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            fd, tmp = tempfile.mkstemp(dir=directory, suffix='.tmp')
            with os.fdopen(fd, 'wb') as handle:
                marshal.dump(code_obj, handle)
            os.rename(tmp, path)
        namespace = {'__name__': 'phoenix_validator_%s' % digest}
        exec(code_obj, namespace)  # noqa: S102 - code generated by fastjsonschema from our own schema
        return namespace['validate']
    # Any problem with the cache (permissions, a truncated file, another Python): compile in memory.
    except Exception:  # pylint: disable=broad-except
        return fastjsonschema.compile(schema)


def _fast_validator(schema_key):
    if not HAS_FASTJSONSCHEMA:
        return None
    validator = _FAST.get(schema_key)
    if validator is None:
        validator = _load_cached_validator(schema_key, SCHEMAS[schema_key])
        _FAST[schema_key] = validator
    return validator


def _first_sentence(text):
    text = ' '.join(str(text or '').split())
    end = text.find('. ')
    return text if end < 0 else text[:end + 1]


def _only_required(schema):
    """The property names of a schema that is exactly {"required": [...]}, else None."""
    if isinstance(schema, dict) and list(schema) == ['required'] and isinstance(schema['required'], list):
        return schema['required']
    return None


def _quoted(names):
    return ', '.join('"%s"' % n for n in names)


def _describe(error):
    """A readable message and the JSON path for one jsonschema error.

    Descends into anyOf/oneOf branches; a bad key (propertyNames) is reported at the key's own path;
    a pattern mismatch says what the value should look like; `not`/`oneOf` over required properties
    are put in words instead of printing the whole object.
    """
    path = list(error.absolute_path)
    if error.validator == 'not' and _only_required(error.validator_value):
        message = 'set only one of %s' % _quoted(error.validator_value['required'])
        return message, path
    if error.validator == 'oneOf' and all(_only_required(s) for s in error.validator_value or [None]):
        message = 'set exactly one of %s' % _quoted(n for s in error.validator_value for n in s['required'])
        return message, path
    if error.context:
        best = _jsonschema().exceptions.best_match(error.context)
        if best is not None and best.message:
            error = best
            path = list(error.absolute_path)
    message = error.message
    is_key = list(error.absolute_schema_path)[-2:-1] == ['propertyNames']
    if error.validator == 'pattern':
        schema = error.schema if isinstance(error.schema, dict) else {}
        hint = PATTERN_HINTS.get(error.validator_value)
        if hint:
            message = '%r is not %s' % (error.instance, hint)
        else:
            hint = _first_sentence(schema.get('description'))
            message = '%r is not in the expected format%s' % (error.instance, ': %s' % hint if hint else '')
    elif is_key:
        message = 'key %s' % message
    if is_key:
        path.append(error.instance)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE - 3] + '...'
    return message, path


def schema_errors(data, schema_key, name, report):
    """Validate a document against a shipped schema and record every violation.

    Returns the JSON paths (lists) of the violations; an empty list means the document is valid.
    """
    fast = _fast_validator(schema_key)
    if fast is not None:
        try:
            fast(data)
            return []
        except fastjsonschema.JsonSchemaException:
            pass
    if not HAS_JSONSCHEMA:
        report.error(name, '/', 'the Python library "jsonschema" is required (pip install jsonschema)',
                     'library.jsonschema')
        return [[]]
    paths = []
    for error in _full_validator(schema_key).iter_errors(data):
        message, path = _describe(error)
        report.error(name, pointer(*path), message, 'schema.%s' % error.validator)
        paths.append(path)
    return paths


def validate_schema(data, schema_key, name, report):
    """True when the document is valid; every violation is recorded in the report."""
    return not schema_errors(data, schema_key, name, report)


def find_config_file(config_dir, name):
    path = os.path.join(config_dir, name)
    return path if os.path.isfile(path) else None
