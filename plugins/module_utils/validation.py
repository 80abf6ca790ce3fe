# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of module options that an argument spec cannot express, run right after ``AnsibleModule(...)``.

Every module of the collection calls ``check_options(module, '<module name>')`` before it reads a file, opens a
connection or sends a request. A bad value then fails the module with one message naming each bad option, instead
of an exception from deep inside a client library ("Module failed: ..."):

- ``str``/``path`` options and the ``str`` elements of lists: the value as given must be text or a number, not a
  dict or a list (Ansible would silently turn ``{'a': 1}`` into the string ``"{'a': 1}"``); an empty string is
  refused where the option is required, has a non-empty default, or is marked ``empty=False`` below.
- ``int``/``float`` options: bounded (``min``/``max``/``gt``); by default a non-negative 32-bit number, ports
  1-65535, timeouts at most a week, retries at most 100; floats finite.
- URLs (``url`` rule): parseable, one of the allowed schemes, a host name or a valid IPv4/[IPv6] literal, a port
  1-65535 when one is given.
- Paths (``path`` rule): ``file`` must be an existing file, ``dir`` an existing directory, ``parent`` a path whose
  directory exists (files the module writes), ``newdir`` a directory that exists or can be made in an existing
  one; ``any`` is not checked.
- File modes (``mode`` rule): octal (``'0644'``, ``420``) or symbolic (``u=rw,g=r``); owners and groups
  (``account`` rule) exist on the host (not looked up in check mode).
- Anything else (``check`` rule): a function of the value returning phrases (SANs, SSH keys, nameserver IPs, ...).
- Nested values of ``dict`` options and of ``list`` elements (``shape`` rule): a small schema (see ``shape_errors``)
  checking the type of each known key; unknown keys are left alone.

``MODULE_RULES`` holds each module's table; ``COMMON_RULES`` applies by option name to every module (both in
validation_rules.py; the value checks they use are in validation_checks.py). The unit test
tests/unit/test_module_bad_input.py feeds wrong values to every option of every module and expects this module's message.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import math

from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation_checks import (
    INT_MAX, _account, _join, _type_name, mode_errors, path_errors, shape_errors, url_errors,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation_rules import COMMON_RULES, MODULE_RULES


def rules_for(module_name, name, spec):
    """The rule dict of one option: COMMON_RULES by name, then the module's table, then defaults from the spec."""
    rule = {}
    if spec.get('type') == 'int' and (name.endswith('_port') or name == 'port'):
        rule.update(min=1, max=65535)
    rule.update(COMMON_RULES.get(name, {}))
    rule.update(MODULE_RULES.get(module_name, {}).get(name, {}))
    return rule


def empty_allowed(spec, rule):
    """Whether an empty string is an acceptable value of a str/path option."""
    if 'empty' in rule:
        return rule['empty']
    if spec.get('required'):
        return False
    default = spec.get('default')
    return default is None or default == ''


def _raw_params():
    """The module arguments as given, before Ansible's type conversion (which turns a dict into a string)."""
    try:
        from ansible.module_utils.basic import _load_params
        params = _load_params()
    except Exception:  # pylint: disable=broad-except
        return {}
    return params if isinstance(params, dict) else {}


def _number_errors(value, rule, kind):
    if kind == 'float' and not math.isfinite(value):
        return ['must be a finite number, got %s' % value]
    default_min, default_max = (0, INT_MAX) if kind == 'int' else (None, None)
    low = rule.get('min', default_min)
    high = rule.get('max', default_max)
    if 'gt' in rule and not value > rule['gt']:
        return ['must be greater than %s, got %s' % (rule['gt'], value)]
    if low is not None and value < low:
        return ['must be at least %s, got %s' % (low, value)]
    if high is not None and value > high:
        return ['must be at most %s, got %s' % (high, value)]
    return []


def option_errors(module_name, argument_spec, params, raw=None, check_mode=False):
    """Every problem of the module's parameters, as ``'<option> ...'`` phrases (empty when all are usable).

    Users and groups (``account`` rules) are not looked up in check mode: an earlier task of the same run may be
    about to create them."""
    raw = raw or {}
    errors = []
    for name in sorted(argument_spec):
        spec = argument_spec[name]
        value = params.get(name)
        if value is None:
            continue
        rule = rules_for(module_name, name, spec)
        kind = spec.get('type', 'str')
        given = raw.get(name, value)
        problems = []
        if kind in ('str', 'path'):
            if isinstance(given, (dict, list, tuple)):
                problems.append('must be a string, got %s' % _type_name(given))
            elif not str(value).strip() and not empty_allowed(spec, rule):
                problems.append('must not be empty')
            elif rule.get('url'):
                problems.extend(url_errors(value, **rule['url']))
            elif kind == 'path':
                problems.extend(path_errors(value, rule.get('path')))
        elif kind in ('int', 'float'):
            problems.extend(_number_errors(value, rule, kind))
        elif kind == 'list' and spec.get('elements') in ('str', 'path'):
            for index, item in enumerate(given if isinstance(given, list) else value):
                if isinstance(item, (dict, list, tuple)):
                    problems.append('[%d] must be a string, got %s' % (index, _type_name(item)))
                elif item is None or not str(item).strip():
                    problems.append('[%d] must not be empty' % index)
        if not problems and rule.get('mode'):
            problems.extend(mode_errors(value))
        if not problems and rule.get('check'):
            problems.extend(rule['check'](value))
        if not problems and rule.get('account') and not check_mode:
            problems.extend(_account(rule['account'])(value))
        if problems and rule.get('hint'):
            problems[-1] += ' (%s)' % rule['hint']
        errors.extend(_join(name, problem) for problem in problems)
        if not problems and rule.get('shape') is not None:
            shaped = shape_errors(name, value, rule['shape'])
            if shaped and rule.get('hint'):
                shaped[-1] += ' (%s)' % rule['hint']
            errors.extend(shaped)
    return errors


def check_options(module, module_name):
    """Fail ``module`` with one message naming every bad option; return when all are usable."""
    errors = option_errors(module_name, module.argument_spec, module.params, _raw_params(), module.check_mode)
    if errors:
        module.fail_json(msg='invalid option%s: %s' % ('s' if len(errors) > 1 else '', '; '.join(errors)))
