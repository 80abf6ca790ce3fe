# -*- coding: utf-8 -*-
"""Every module's documentation is complete (issue #19): at least three EXAMPLES, each calling the module only with
options its argument spec has (suboptions too), and a ``sample`` for every RETURN value, nested ``contains`` too.

DOCUMENTATION, EXAMPLES and RETURN are read from the module source (no import needed) and parsed with yaml; the
argument spec is read by calling the module's ``main()`` until it builds its AnsibleModule, so a new module or
option is covered without editing this file.
"""

import ast
import importlib
import os
import pkgutil

import pytest
import yaml

from phoenix_testlib import REPO  # also puts the collection on sys.path

PACKAGE = 'ansible_collections.thinkheads.phoenix.plugins.modules.'
MODULES_DIR = os.path.join(REPO, 'plugins', 'modules')
MODULES = sorted(m.name for m in pkgutil.iter_modules([MODULES_DIR]))
MIN_EXAMPLES = 3
# modules whose docs still fall short (issue #19): expected to fail (strict: a fixed module must leave this list)
PENDING = {
    'examples': set(),
    'samples': set(),
}


def params(check):
    """MODULES for one check, those listed in PENDING[check] marked as expected (strict) failures."""
    mark = pytest.mark.xfail(strict=True, reason='docs still incomplete (issue #19)')
    return [pytest.param(name, marks=mark) if name in PENDING[check] else name for name in MODULES]


def docs(name):
    """{'DOCUMENTATION': ..., 'EXAMPLES': ..., 'RETURN': ...} parsed from the module's source."""
    with open(os.path.join(MODULES_DIR, name + '.py'), encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'):
                found[node.targets[0].id] = yaml.safe_load(ast.literal_eval(node.value))
    return found


class _Spec(Exception):
    pass


def argument_spec(name):
    """The module's argument_spec, read by calling its main() until AnsibleModule."""
    mod = importlib.import_module(PACKAGE + name)
    original = mod.AnsibleModule

    def capture(*args, **kwargs):
        raise _Spec(kwargs)

    mod.AnsibleModule = capture
    try:
        mod.main()
    except _Spec as spec:
        return spec.args[0]['argument_spec']
    finally:
        mod.AnsibleModule = original
    raise AssertionError('%s.main() never built its AnsibleModule' % name)


def missing_samples(values, prefix=''):
    """Dotted names of the RETURN values (and their ``contains``) without a sample."""
    missing = []
    for key, value in (values or {}).items():
        if 'sample' not in value:
            missing.append(prefix + key)
        missing += missing_samples(value.get('contains'), prefix + key + '.')
    return missing


def unknown_options(args, spec, prefix=''):
    """Dotted names of the options in ``args`` that ``spec`` (names and aliases) does not have, suboptions too."""
    unknown = []
    for key, value in (args or {}).items():
        entry = next((opt for opt_name, opt in spec.items() if key == opt_name or key in opt.get('aliases', ())), None)
        if entry is None:
            unknown.append(prefix + key)
            continue
        suboptions = entry.get('options')
        if not suboptions:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                unknown += unknown_options(item, suboptions, prefix + key + '.')
    return unknown


def module_calls(examples, name):
    """The argument dicts of every example task that calls the module (FQCN or short name, blocks included)."""
    calls = []
    for task in examples or []:
        for nested in ('block', 'rescue', 'always'):
            calls += module_calls(task.get(nested), name)
        for key in ('thinkheads.phoenix.' + name, name):
            if key in task:
                calls.append(task[key] or {})
    return calls


def test_every_module_is_checked():
    assert len(MODULES) >= 15 and 'proxmox_guest' in MODULES


@pytest.mark.parametrize('name', params('examples'))
def test_examples_count_and_use_only_real_options(name):
    parsed = docs(name)
    calls = module_calls(parsed.get('EXAMPLES'), name)
    assert len(calls) >= MIN_EXAMPLES, '%s: %d examples call the module, at least %d wanted' % (
        name, len(calls), MIN_EXAMPLES)
    spec = argument_spec(name)
    for number, args in enumerate(calls, 1):
        assert isinstance(args, dict), '%s example %d: arguments are not a mapping' % (name, number)
        unknown = unknown_options(args, spec)
        assert not unknown, '%s example %d uses options the module does not have: %s' % (name, number, unknown)


@pytest.mark.parametrize('name', params('samples'))
def test_every_return_value_has_a_sample(name):
    returned = docs(name).get('RETURN')
    assert returned, '%s has no RETURN' % name
    assert missing_samples(returned) == [], '%s: RETURN values without a sample' % name


def test_the_checks_find_what_they_look_for():
    assert missing_samples({'a': {'sample': 1, 'contains': {'b': {}, 'c': {'sample': 2}}}, 'd': {}}) == ['a.b', 'd']
    spec = {'rules': {'type': 'list', 'options': {'action': {}, 'dport': {'aliases': ['port']}}}, 'vmid': {}}
    assert unknown_options({'vmid': 1, 'rules': [{'action': 'x', 'port': 1}, {'bogus': 1}], 'nope': 2}, spec) == [
        'rules.bogus', 'nope']
    examples = [{'name': 'x', 'thinkheads.phoenix.m': {'a': 1}}, {'block': [{'m': None}]}, {'debug': {}}]
    assert module_calls(examples, 'm') == [{'a': 1}, {}]
