# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: render_stack
short_description: Render a Phoenix Docker stack (compose text, env list, routing facts)
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Turns a stack's compose file and its Phoenix settings (C(phoenix_stacks[name]), the config model's merge of
    C(phoenix_stacks_config.json) and C(stacks/<name>/phoenix.json)) into what M(thinkheads.phoenix.portainer_stack)
    deploys. Pure and deterministic; see C(docs/stacks.md).
  - A service that publishes C(ports) or uses C(expose) breaks the platform's ports rule, the same rule and the same
    switch (O(platform_rules)) as the config model's validation. With V(error) the filter fails, naming the file and
    the service; with V(warning) the stack renders, Ansible prints a warning and RV(_value.warnings) lists it.
  - Routed services (those with C(traefik_labels)) get the labels merged into C(deploy.labels), join the routed
    overlay network (declared C(external)) and get the network label Traefik uses to reach their tasks.
positional: _input, name
options:
  _input:
    description: The compose file's text (or the parsed mapping).
    type: raw
    required: true
  name:
    description: The stack name.
    type: str
    required: true
  stack:
    description: The stack's settings from the config model (C(phoenix_stacks[name])).
    type: dict
  environment:
    description: Which environment of the stack to render; defaults to the model's load environment.
    type: str
  values:
    description:
      - Values of the variables declared with C(value_from), keyed by the C(value_from) name (or by the variable
        name).
    type: dict
  env:
    description: Extra environment variables (dict, or list of C(name)/C(value)).
    type: raw
  routed_network:
    description: The attachable overlay network routed services join. Empty to attach nothing.
    type: str
    default: phoenix-routed
  network_label:
    description:
      - Label naming the network Traefik reaches the tasks on. V(traefik.swarm.network) for Traefik v3's Swarm
        provider, V(traefik.docker.network) for Traefik v2.
    type: str
    default: traefik.swarm.network
  platform_rules:
    description:
      - Level of the ports/expose rule, the inventory's C(platform_rules) option (published as
        C(phoenix_platform_rules)). V(warning) is the exception for stacks that must bind a host port (see
        C(docs/migration.md)).
    type: str
    choices: [error, warning]
    default: error
'''

EXAMPLES = r'''
- name: Render the Qdrant stack for production
  ansible.builtin.set_fact:
    qdrant_rendered: >-
      {{ lookup('ansible.builtin.file', phoenix_stacks.qdrant_service.compose_file)
         | thinkheads.phoenix.render_stack('qdrant_service', stack=phoenix_stacks.qdrant_service,
                                          environment='production', platform_rules=phoenix_platform_rules,
                                          values={'vault_qdrant_api_key': vault_qdrant_api_key}) }}
'''

RETURN = r'''
_value:
  description: The rendered stack.
  type: dict
  contains:
    compose:
      description: The rendered compose file (YAML text).
      type: str
    env:
      description: The stack's environment, sorted by name.
      type: list
      elements: dict
    secret_env_names:
      description: Names of the variables whose values are secret (masked in diffs).
      type: list
      elements: str
    routing:
      description: Per routed service, its Swarm service name, host names, routers, port and network.
      type: list
      elements: dict
    configs:
      description: Docker configs for the stack's files (C(name), C(content), C(target)).
      type: list
      elements: dict
    secrets:
      description:
        - Swarm secrets for the compose file's top-level C(secrets) that take their value from a stack variable
          (their C(environment) key names the variable), each C(name) (C(<stack>_<key>), versioned by P(thinkheads.phoenix.portainer_stack#module))
          and C(value) (secret). Those variables are not in RV(_value.env).
      type: list
      elements: dict
    warnings:
      description: The ports/expose findings of a stack rendered with O(platform_rules=warning), the file named.
      type: list
      elements: str
'''

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import (
    DEFAULT_NETWORK_LABEL, DEFAULT_ROUTED_NETWORK, StackRenderError, render,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_rules import ERROR

display = Display()


def render_stack(compose, name, stack=None, environment=None, values=None, env=None,
                 routed_network=DEFAULT_ROUTED_NETWORK, network_label=DEFAULT_NETWORK_LABEL, platform_rules=ERROR):
    """The rendered stack; see DOCUMENTATION."""
    try:
        rendered = render(compose, name, stack=stack, environment=environment, values=values, env=env,
                          routed_network=routed_network, network_label=network_label,
                          platform_rules=str(platform_rules or ERROR))
    except StackRenderError as exc:
        raise AnsibleFilterError(str(exc)) from None
    for warning in rendered['warnings']:
        display.warning('stack %s: %s' % (name, warning))
    return rendered


class FilterModule(object):
    def filters(self):
        return {'render_stack': render_stack}
