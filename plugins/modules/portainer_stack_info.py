#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: portainer_stack_info
short_description: List the Swarm stacks of a Portainer environment, and which ones Phoenix manages
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
extends_documentation_fragment:
  - thinkheads.phoenix.portainer
  - thinkheads.phoenix.attributes
description:
  - Lists Portainer's Swarm stacks of one environment (C(GET /api/stacks), kept by their C(EndpointId), since
    Portainer's own C(EndpointID) filter never returns Swarm stacks) and the Swarm stacks whose services carry the
    C(io.thinkheads.phoenix.stack) label that P(thinkheads.phoenix.render_stack#filter) puts on every service
    (one C(GET /api/endpoints/{id}/docker/services)). C(sync.yml) uses it to prune stacks removed from the config.
options:
  endpoint:
    description: Name of the Portainer environment.
    type: str
    default: primary
  endpoint_id:
    description: ID of the Portainer environment; saves the lookup by name.
    type: int
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
'''

EXAMPLES = r'''
- name: Stacks Phoenix deployed
  thinkheads.phoenix.portainer_stack_info:
    url: https://portainer.internal.thinkheads.ai:9443
    api_key: "{{ vault_portainer_api_key }}"
  register: phoenix_stacks_now

- name: Stacks of another environment, by ID (no lookup by name)
  thinkheads.phoenix.portainer_stack_info:
    url: https://10.0.0.111:9443
    api_key: "{{ vault_portainer_api_key }}"
    ca_path: /etc/phoenix/step-root.pem
    endpoint_id: 2
  register: phoenix_stacks_now

- name: Stacks of the environment named swarm
  thinkheads.phoenix.portainer_stack_info:
    url: https://portainer.internal.thinkheads.ai:9443
    api_key: "{{ vault_portainer_api_key }}"
    endpoint: swarm
  register: phoenix_stacks_now
'''

RETURN = r'''
stacks:
  description: Portainer's Swarm stacks of the environment - C(id), C(name), C(status), C(managed) (rendered by Phoenix).
  returned: always
  type: list
  elements: dict
  sample: [{id: 3, name: qdrant, status: 1, managed: true}]
managed:
  description: Names of the Swarm stacks whose services carry the Phoenix stack label (in Portainer or not).
  returned: always
  type: list
  elements: str
  sample: [qdrant, thinkheads_ai_app]
endpoint_id:
  description: The environment used.
  returned: always
  type: int
  sample: 1
api_calls:
  description: Requests made, per method and path template.
  returned: always
  type: dict
  sample: {"GET /api/endpoints": 1, "GET /api/endpoints/{id}/docker/services": 1, "GET /api/stacks": 1}
'''

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import (
    STACK_TYPE_SWARM, PortainerClient, PortainerError, portainer_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import MANAGED_LABEL
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    spec = dict(endpoint=dict(type='str', default='primary'), endpoint_id=dict(type='int'))
    spec.update(portainer_argument_spec())
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    check_options(module, 'portainer_stack_info')
    p = module.params
    conn = dict((k, p[k]) for k in portainer_argument_spec())
    client = None
    try:
        client = PortainerClient(**conn)
        eid = client.resolve_endpoint(p['endpoint'], p['endpoint_id'])
        services = client.docker(eid, 'GET', '/services',
                                 query={'filters': json.dumps({'label': [MANAGED_LABEL]})}) or []
        managed = sorted(set(s['Spec']['Labels'].get(MANAGED_LABEL) for s in services
                             if (s['Spec'].get('Labels') or {}).get(MANAGED_LABEL)))
        stacks = [{'id': s['Id'], 'name': s['Name'], 'status': s.get('Status'), 'managed': s['Name'] in managed}
                  for s in client.stacks(eid) if s.get('Type') == STACK_TYPE_SWARM]
    except PortainerError as exc:
        module.fail_json(msg=str(exc), api_calls=client.calls if client else {})
    module.exit_json(changed=False, stacks=stacks, managed=managed, endpoint_id=eid, api_calls=client.calls)


if __name__ == '__main__':
    main()
