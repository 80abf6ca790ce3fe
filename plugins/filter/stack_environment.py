# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: stack_environment
author:
  - Thinkheads platform team (@thinkheads)
version_added: 0.1.0
short_description: The settings of one environment of a Phoenix stack
description:
  - The variables, files, services and routers of a stack (C(phoenix_stacks[name])) for one environment; the stack
    itself for the environment the inventory loaded, else its entry under C(other_environments).
  - The one environment view (C(environment_view) in module_utils/stack_rules.py) that the
    P(thinkheads.phoenix.render_stack#filter) filter and the routing filters use too.
  - Fails, naming the environments the model resolved, when the stack has no settings for O(environment).
positional: _input, environment
options:
  _input:
    description: The stack's settings from the config model (C(phoenix_stacks[name])).
    type: dict
    required: true
  environment:
    description: The environment; empty for the one the inventory loaded.
    type: str
'''

EXAMPLES = r'''
- name: The vault variables the Qdrant stack reads in testing
  ansible.builtin.debug:
    msg: >-
      {{ (phoenix_stacks.qdrant_service | thinkheads.phoenix.stack_environment('testing')).variables
         | selectattr('value_from', 'defined') | map(attribute='value_from') | list }}
'''

RETURN = r'''
_value:
  description: The environment's C(variables), C(files), C(services) and C(routers) (and, for the loaded
    environment, the whole stack).
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_rules import environment_view


def stack_environment(stack, environment=None):
    """The settings of one environment of a stack; see DOCUMENTATION."""
    try:
        return environment_view(stack, environment)
    except KeyError as exc:
        raise AnsibleFilterError(exc.args[0]) from None


class FilterModule(object):
    def filters(self):
        return {'stack_environment': stack_environment}
