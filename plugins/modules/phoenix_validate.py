#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: phoenix_validate
short_description: Validate the Phoenix JSON configs and report every error and warning
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Loads the Phoenix configuration with the same config model the C(thinkheads.phoenix.phoenix) inventory
    plugin uses, and reports every schema and semantic problem at once, each with the file, the JSON path
    and the message.
  - Read-only; it never changes anything, so it always reports C(changed=false) and runs in check mode.
  - Fails when there are errors unless O(fail_on_error=false).
options:
  config_dir:
    description: Directory holding the Phoenix JSON configs.
    type: path
    required: true
  stacks_dir:
    description: Directory with one sub-directory per stack. Defaults to C(stacks) next to O(config_dir).
    type: path
  environment:
    description: Stack environment to resolve.
    type: str
    default: production
  platform_rules:
    description: Severity of platform-policy findings (for example stack compose files that publish ports).
    type: str
    choices: ['error', 'warning']
    default: error
  fail_on_error:
    description: Fail the task when the configuration has errors.
    type: bool
    default: true
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - jsonschema
  - PyYAML
notes:
  - "Run it on the controller (C(hosts: localhost), C(connection: local)); it reads files, not inventory."
seealso:
  - plugin: thinkheads.phoenix.phoenix
    plugin_type: inventory
'''

EXAMPLES = r'''
- name: Validate the Phoenix configs
  thinkheads.phoenix.phoenix_validate:
    config_dir: "{{ playbook_dir }}/../etc"
    stacks_dir: "{{ playbook_dir }}/../stacks"
  register: phoenix_validation

- name: Collect findings without failing
  thinkheads.phoenix.phoenix_validate:
    config_dir: /usr/local/phoenix_hypervisor/etc
    platform_rules: warning
    fail_on_error: false
  register: phoenix_validation

- name: Validate the development environment of the stacks
  thinkheads.phoenix.phoenix_validate:
    config_dir: /usr/local/phoenix_hypervisor/etc
    stacks_dir: /usr/local/phoenix_hypervisor/stacks
    environment: development
  register: phoenix_validation
'''

RETURN = r'''
valid:
  description: Whether the configuration has no errors.
  returned: always
  type: bool
  sample: false
errors:
  description: Every error, sorted by file and path.
  returned: always
  type: list
  elements: dict
  sample:
    - {severity: error, file: phoenix_lxc_configs.json, path: /lxc_configs/801/network_config/ip,
       message: "duplicate IP 10.0.0.150: used by guests 801, 950", code: network.duplicate_ip}
  contains:
    file: {description: Config file name., type: str, returned: always, sample: phoenix_lxc_configs.json}
    path: {description: JSON Pointer into the file., type: str, returned: always, sample: /lxc_configs/801/network_config/ip}
    message: {description: What is wrong., type: str, returned: always, sample: "duplicate IP 10.0.0.150: used by guests 801, 950"}
    code: {description: Stable identifier of the check., type: str, returned: always, sample: network.duplicate_ip}
    severity: {description: Always C(error)., type: str, returned: always, sample: error}
warnings_found:
  description: Every warning, in the same shape as RV(errors).
  returned: always
  type: list
  elements: dict
  sample:
    - {severity: warning, file: stacks/qdrant_service/docker-compose.yml, path: /services/qdrant/ports,
       message: "service qdrant of stack qdrant_service uses \"ports\": stacks must not publish or expose ports, every
       service is reached through Traefik (declare traefik_labels in phoenix.json)", code: platform.compose_ports}
report:
  description: The readable report, one line per finding.
  returned: always
  type: list
  elements: str
  sample:
    - "Phoenix configuration: 1 error(s), 0 warning(s)"
    - "ERROR   phoenix_lxc_configs.json: /lxc_configs/801/network_config/ip: duplicate IP 10.0.0.150: used by guests 801, 950"
features_without_role:
  description:
    - The features the guests use that have no role in the collection (the feature registry). They are accepted
      and set nothing up; not an error.
  returned: always
  type: list
  elements: str
  sample: [base_setup, step_cli]
guests:
  description: Guest IDs in dependency order (creation order).
  returned: when the configuration is valid
  type: list
  elements: int
  sample: [103, 900, 910, 950, 953, 801]
stacks:
  description: Names of the stacks found.
  returned: when the configuration is valid
  type: list
  elements: str
  sample: [qdrant_service, thinkheads_ai_app]
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.features import without_role
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options

try:
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.loader import HAS_JSONSCHEMA
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    IMPORT_ERROR = None
except ImportError:  # pragma: no cover
    HAS_JSONSCHEMA = False
    IMPORT_ERROR = traceback.format_exc()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config_dir=dict(type='path', required=True),
            stacks_dir=dict(type='path'),
            environment=dict(type='str', default='production'),
            platform_rules=dict(type='str', default='error', choices=['error', 'warning']),
            fail_on_error=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    check_options(module, 'phoenix_validate')
    if IMPORT_ERROR or not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib('jsonschema'), exception=IMPORT_ERROR)
    params = module.params
    config = load_config(params['config_dir'], params['stacks_dir'], environment=params['environment'],
                         platform_rules=params['platform_rules'])
    report = config.report
    result = dict(
        changed=False,
        valid=report.ok,
        errors=[f.as_dict() for f in report.sorted_errors()],
        warnings_found=[f.as_dict() for f in report.sorted_warnings()],
        report=report.lines(),
        features_without_role=without_role(
            [feature for guest in (config.guests or {}).values() for feature in guest['features']]),
    )
    if report.ok:
        result['guests'] = [g['id'] for g in config.ordered_guests()]
        result['stacks'] = sorted(config.stacks)
    elif params['fail_on_error']:
        module.fail_json(msg=report.text(), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
