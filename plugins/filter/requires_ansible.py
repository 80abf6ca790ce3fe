# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's requires_ansible constraints a version fails (documented in requires_ansible.yml)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import operator
import os
import re

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.compat.version import LooseVersion

# meta/runtime.yml of the collection this file belongs to, wherever a playbook importing it lives
RUNTIME_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            'meta', 'runtime.yml')


def _collection_requirement():
    try:
        with open(RUNTIME_FILE) as handle:
            runtime = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AnsibleFilterError('requires_ansible: cannot read %s: %s' % (RUNTIME_FILE, exc)) from exc
    return str(runtime.get('requires_ansible') or '')


# the comparison operators of a requires_ansible constraint (a version without one means ==)
_OPERATORS = {'>=': operator.ge, '<=': operator.le, '==': operator.eq, '!=': operator.ne, '>': operator.gt,
              '<': operator.lt}
_CONSTRAINT = re.compile(r'^(>=|<=|==|!=|>|<)?\s*([0-9][0-9A-Za-z.]*)$')


def _release(version):
    """The numeric release of a version: a pre-release (2.21.0.dev0, 2.21.0rc1) compares as its release."""
    match = re.match(r'[0-9]+(\.[0-9]+)*', str(version).strip())
    if not match:
        raise AnsibleFilterError('requires_ansible: not a version: %r' % (version,))
    return LooseVersion(match.group(0))


def requires_ansible(version, requires=None):
    """Every constraint of `requires` (default: the collection's requires_ansible) that `version` does not meet."""
    spec_text = _collection_requirement() if requires is None else str(requires)
    current = _release(version)
    unmet = []
    for spec in (part.strip() for part in spec_text.split(',')):
        if not spec:
            continue
        match = _CONSTRAINT.match(spec)
        if not match:
            raise AnsibleFilterError('requires_ansible: not a version constraint: %r' % spec)
        if not _OPERATORS[match.group(1) or '=='](current, _release(match.group(2))):
            unmet.append(spec)
    return sorted(unmet)


class FilterModule(object):

    def filters(self):
        return {'requires_ansible': requires_ansible}
