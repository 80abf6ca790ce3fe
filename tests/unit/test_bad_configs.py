# -*- coding: utf-8 -*-
"""The bad-config corpus (tests/fixtures/bad_configs.yml): every broken config must be reported exactly.

Each case copies a config tree (the project's own etc/ + stacks/, or the reference deployment),
applies a few edits, loads it with load_config() and checks that each expected error finding
(file, JSON pointer, message) is present. A case with ``xfail_reason`` documents a message or
check that is wrong today: it records the finding it SHOULD produce and xfails until the model
produces it (then it fails, so that the marker is removed).
"""

import os
import re

import pytest
import yaml

CORPUS = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'bad_configs.yml')
BASES = ('phoenix', 'reference')
# How each base loads cleanly: the reference deployment's compose files publish ports, which is a
# platform-policy error by default, so its clean state is with platform rules as warnings.
BASE_LOAD = {'phoenix': {}, 'reference': {'platform_rules': 'warning'}}
OPS = ('set', 'delete', 'append', 'write', 'replace', 'rename')
ID_RE = re.compile(r'^[a-z0-9]+(-[a-z0-9]+)*$')

with open(CORPUS, encoding='utf-8') as _handle:
    CASES = yaml.safe_load(_handle)


# --------------------------------------------------------------------------- JSON pointer edits

def _parts(path):
    if path in ('', '/'):
        return []
    assert path.startswith('/'), 'JSON pointer must start with "/": %r' % path
    return [p.replace('~1', '/').replace('~0', '~') for p in path[1:].split('/')]


def _step(node, part):
    return node[int(part)] if isinstance(node, list) else node[part]


def _walk(doc, path):
    """(parent, last part) of a pointer; the parent must exist."""
    parts = _parts(path)
    assert parts, 'cannot edit the document root with a pointer'
    node = doc
    for part in parts[:-1]:
        node = _step(node, part)
    return node, parts[-1]


def _write_text(path, text, encoding):
    with open(path, 'w', encoding=encoding) as handle:
        handle.write(text)


def apply_op(tree, op):
    kind, name = op['op'], op['file']
    path = tree.path(name)
    encoding = op.get('encoding', 'utf-8')  # e.g. latin-1, to produce a file that is not UTF-8
    if kind == 'write':
        _write_text(path, op['text'], encoding)
        return
    if kind == 'delete' and 'path' not in op:
        os.remove(path)
        return
    if kind == 'rename':
        os.rename(path, tree.path(op['to']))
        return
    if kind == 'replace':
        with open(path, encoding='utf-8') as handle:
            text = handle.read()
        assert text.count(op['old']) == 1, '%s: %r must occur exactly once' % (name, op['old'])
        _write_text(path, text.replace(op['old'], op['new']), encoding)
        return
    doc = tree.read(name)
    parent, last = _walk(doc, op['path'])
    if kind == 'set':
        if isinstance(parent, list):
            if last == '-':
                parent.append(op['value'])
            else:
                parent[int(last)] = op['value']
        else:
            parent[last] = op['value']
    elif kind == 'delete':
        del parent[int(last) if isinstance(parent, list) else last]
    elif kind == 'append':
        target = _step(parent, last)
        assert isinstance(target, list), '%s%s is not a list' % (name, op['path'])
        target.append(op['value'])
    else:
        raise AssertionError('unknown op %r' % kind)
    tree.write(name, doc)


# --------------------------------------------------------------------------- checks

def _triples(findings):
    return [(f.file, f.path, f.message) for f in findings]


def _missing(expected, findings, tree):
    """Expected findings that are not in ``findings``; '{etc}' in a message stands for the tree's etc/ path."""
    have = set(_triples(findings))
    out = []
    for item in expected or []:
        item = dict(item, message=item['message'].replace('{etc}', tree.etc))
        if (item['file'], item['path'], item['message']) not in have:
            out.append(item)
    return out


def check_case(case, config, tree):
    """Every problem with the report, as text; empty when the case holds."""
    report = config.report
    problems = []
    if not report.errors:
        problems.append('no errors were reported')
    for item in _missing(case['expect'], report.errors, tree):
        problems.append('missing error   %s: %s: %s' % (item['file'], item['path'], item['message']))
    for item in _missing(case.get('expect_warnings'), report.warnings, tree):
        problems.append('missing warning %s: %s: %s' % (item['file'], item['path'], item['message']))
    if 'count' in case and len(report.errors) != case['count']:
        problems.append('expected %d error(s), got %d' % (case['count'], len(report.errors)))
    if problems:
        problems.append(report.text())
    return problems


def _prepare(request, case):
    """The edited tree and the load_config() arguments of a case (corpus mistakes raise here, never xfail)."""
    tree = request.getfixturevalue('%s_tree' % case['base'])
    for op in case['ops']:
        apply_op(tree, op)
    kwargs = dict(BASE_LOAD[case['base']])
    kwargs.update(case.get('load') or {})
    return tree, kwargs


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_bad_config(request, case):
    tree, kwargs = _prepare(request, case)
    reason = case.get('xfail_reason')
    if not reason:
        problems = check_case(case, tree.load(**kwargs), tree)
        assert not problems, '\n'.join(problems)
        return
    try:
        config = tree.load(**kwargs)
    # a model traceback is a documented bug
    except Exception as exc:  # pylint: disable=broad-except
        pytest.xfail('%s [%s: %s]' % (reason, type(exc).__name__, exc))
    if check_case(case, config, tree):
        pytest.xfail(reason)
    pytest.fail('case %s now passes: remove its xfail_reason' % case['id'])


def test_corpus_shape():
    assert isinstance(CASES, list)
    ids = [c['id'] for c in CASES]
    assert len(ids) >= 40, 'the corpus needs at least 40 cases, has %d' % len(ids)
    assert len(set(ids)) == len(ids), 'duplicate case ids: %s' % sorted(set(i for i in ids if ids.count(i) > 1))
    for case in CASES:
        cid = case['id']
        assert ID_RE.match(cid), '%s: id must be kebab-case' % cid
        assert case.get('description'), '%s: description missing' % cid
        assert case['base'] in BASES, '%s: base must be one of %s' % (cid, BASES)
        assert isinstance(case['ops'], list), '%s: ops must be a list' % cid
        assert case['ops'] or case.get('load'), '%s: a case without ops must at least change how it loads' % cid
        for op in case['ops']:
            assert op['op'] in OPS and op.get('file'), '%s: bad op %r' % (cid, op)
        assert case['expect'], '%s: expect is empty' % cid
        for item in case['expect'] + (case.get('expect_warnings') or []):
            assert set(item) == {'file', 'path', 'message'}, '%s: bad expectation %r' % (cid, item)
        extra = set(case) - {'id', 'description', 'base', 'ops', 'load', 'expect', 'expect_warnings', 'count',
                             'xfail_reason'}
        assert not extra, '%s: unknown keys %s' % (cid, sorted(extra))


@pytest.mark.parametrize('base', BASES)
def test_unmodified_base_is_clean(request, base):
    config = request.getfixturevalue('%s_tree' % base).load(**BASE_LOAD[base])
    assert not config.report.errors, config.report.text()
    assert config.guests


def test_ops_helper(phoenix_tree):
    """The pointer helper itself: set, append, delete on nested objects and lists."""
    apply_op(phoenix_tree, {'op': 'set', 'file': 'phoenix_vm_configs.json', 'path': '/vms/1/cores', 'value': 8})
    apply_op(phoenix_tree, {'op': 'append', 'file': 'phoenix_vm_configs.json', 'path': '/vms/1/features',
                            'value': 'x'})
    apply_op(phoenix_tree, {'op': 'delete', 'file': 'phoenix_vm_configs.json', 'path': '/vms/0'})
    apply_op(phoenix_tree, {'op': 'set', 'file': 'phoenix_lxc_configs.json', 'path': '/lxc_configs/a~1b',
                            'value': {}})
    vms = phoenix_tree.read('phoenix_vm_configs.json')['vms']
    assert vms[0]['cores'] == 8 and vms[0]['features'][-1] == 'x'
    assert 'a/b' in phoenix_tree.read('phoenix_lxc_configs.json')['lxc_configs']
