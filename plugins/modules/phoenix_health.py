#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: phoenix_health
short_description: Check the Phoenix platform from the controller and render one health table
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Derives the checks from the Phoenix inventory (every guest's C(phoenix_guest), the hypervisor config, the
    stacks) and runs them concurrently from the host running the module, usually the controller.
  - "Checks: Proxmox guest state (from O(pve_guests)), firewall drift (from O(firewalls)), DNS resolution of
    every guest FQDN, the Step-CA name and every routed hostname, Step-CA C(/health) over TLS verified with
    O(ca_file), Traefik ping, every route through the Nginx gateway over HTTPS (any answer below 500 means
    the route reached a backend), the Portainer server's C(/api/status) and every agent's port, Qdrant's
    C(/healthz) through the gateway, and vLLM's C(/health) and C(/v1/models) (the served model must be listed)."
  - A check whose guest or feature is absent from the config is reported as C(n/a), never as a failure.
  - Read-only; it always reports C(changed=false) and runs in check mode. It fails only on bad input;
    whether the platform is healthy is returned in RV(healthy) (see O(fail_on)), so that a playbook can
    print the table before failing.
options:
  guests:
    description: The C(phoenix_guest) of every guest, templates included (see the examples).
    type: list
    elements: dict
    required: true
  hypervisor:
    description: The hypervisor config (C(phoenix_hypervisor) of the hypervisor host); Step-CA name, Portainer ports.
    type: dict
    default: {}
  stacks:
    description: The stacks (C(phoenix_stacks) of the hypervisor host); their Traefik routers are routed hostnames.
    type: dict
    default: {}
  domain:
    description: The platform domain (C(phoenix_domain)); names routes whose C(traefik_service) has no host.
    type: str
    default: ''
  routes:
    description:
      - The route plan, C(phoenix_routes) as the thinkheads.phoenix.phoenix inventory publishes it (what
        P(thinkheads.phoenix.phoenix_routes#filter) gives for O(guests) and O(stacks)).
      - Omitted, it is derived here from O(guests) and O(stacks).
    type: dict
  dns_records:
    description:
      - The records every name must resolve to, C(phoenix_dns_records) as the inventory publishes it
        (P(thinkheads.phoenix.dns_records#filter)).
      - Omitted, derived here from O(guests), the route plan, O(domain) and the CA's C(step_ca.dns_name).
    type: list
    elements: dict
  pve_guests:
    description:
      - The C(guests) result of M(thinkheads.phoenix.proxmox_guest_info). Each guest must exist and run (templates
        must be templates); service checks of a guest that does not run fail without probing.
      - Omitted, the Proxmox rows are C(n/a).
    type: dict
  firewalls:
    description:
      - Firewall drift per guest ID (or C(cluster)), each C({changed, failed, skipped, msg, enabled}) as
        M(thinkheads.phoenix.proxmox_firewall) reports it in check mode. Drift is a C(warn), an error a C(fail).
      - Omitted, the firewall row is C(n/a).
    type: dict
  pve_error:
    description:
      - Why the Proxmox state could not be read (the C(msg) of a failed M(thinkheads.phoenix.proxmox_guest_info));
        reported as a failed Proxmox row.
    type: str
  ca_file:
    description:
      - The Step-CA root certificate (PEM file) every TLS check verifies against.
      - Neither O(ca_file) nor O(ca_data), the system CAs.
    type: path
  ca_data:
    description: The Step-CA root certificate as PEM text, instead of O(ca_file) (or in addition to it).
    type: str
  validate_certs:
    description: Verify TLS certificates and hostnames. Only for debugging.
    type: bool
    default: true
  nameservers:
    description: DNS servers queried (A records over UDP). Empty, the resolver of the host running the module.
    type: list
    elements: str
    default: []
  dns_port:
    description: Port of O(nameservers).
    type: int
    default: 53
  route_address:
    description:
      - Address every routed hostname must resolve to. Empty, the Nginx gateway's IP (else Traefik's);
        C(any) accepts any address.
    type: str
    default: ''
  gateway_port:
    description: HTTPS port of the Nginx gateway.
    type: int
    default: 443
  traefik_ping_scheme:
    description: Scheme of Traefik's ping entry point.
    type: str
    choices: [http, https]
    default: http
  traefik_ping_port:
    description: Port of Traefik's ping entry point.
    type: int
    default: 8080
  traefik_ping_path:
    description: Path of Traefik's ping endpoint (it answers C(OK)).
    type: str
    default: /ping
  step_ca_port:
    description: Port Step-CA listens on.
    type: int
    default: 9000
  portainer_server_port:
    description: Portainer server HTTPS port when the hypervisor config sets none.
    type: int
    default: 9443
  portainer_agent_port:
    description: Portainer agent port when the hypervisor config sets none.
    type: int
    default: 9001
  qdrant_path:
    description: Qdrant health path, asked through the gateway with the Qdrant route's hostname.
    type: str
    default: /healthz
  vllm_scheme:
    description:
      - Scheme of the vLLM servers. The vllm role serves TLS when it has a certificate (C(vllm_tls_cert)).
      - With C(http), O(vllm_api_key) is not sent unless O(vllm_key_over_http) allows it.
    type: str
    choices: [http, https]
    default: https
  vllm_key_over_http:
    description:
      - Send O(vllm_api_key) to a vLLM server asked over plain C(http). Off by default, because the key is a bearer
        secret that anyone on the path could read and reuse; the C(/v1/models) check then fails and says why.
    type: bool
    default: false
  vllm_api_key:
    description: vLLM API key for C(/v1/models). Without it a server that requires one is a C(warn).
    type: str
    default: ''
  extra_rows:
    description:
      - Rows measured elsewhere, each C({section, check, target, status, detail}) with status C(ok), C(warn), C(fail)
        or C(n/a). A section given here replaces the module's own checks of that section (for example Traefik's
        ping, whose entry point listens on the Traefik guest's loopback and is asked on the guest).
    type: list
    elements: dict
    default: []
  skip:
    description: Sections reported as C(n/a) without running them.
    type: list
    elements: str
    choices: [proxmox, firewall, dns, step_ca, traefik, gateway, portainer, portainer_agent, qdrant, vllm]
    default: []
  fail_on:
    description: Statuses that make RV(healthy) false.
    type: list
    elements: str
    choices: [fail, warn]
    default: [fail]
  timeout:
    description: Seconds per network operation.
    type: float
    default: 5.0
  retries:
    description: Retries (with exponential backoff) of a probe on connection errors and timeouts.
    type: int
    default: 1
  concurrency:
    description: Checks run at the same time.
    type: int
    default: 16
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Run it on the controller (C(delegate_to) or C(hosts) C(localhost)); it needs network access to the guests.
  - DNS is asked with dnspython (an A query; answers are read from A records, CNAME chains included); HTTP(S) and
    TCP use the standard library.
requirements:
  - dnspython (when O(nameservers) is set)
seealso:
  - module: thinkheads.phoenix.proxmox_guest_info
  - module: thinkheads.phoenix.proxmox_firewall
'''

EXAMPLES = r'''
- name: Check the platform
  thinkheads.phoenix.phoenix_health:
    guests: "{{ groups['phoenix'] | map('extract', hostvars, 'phoenix_guest') | list }}"
    hypervisor: "{{ phoenix_hypervisor }}"
    stacks: "{{ phoenix_stacks }}"
    domain: "{{ phoenix_domain }}"
    ca_file: /etc/phoenix/step-ca-root.crt
    nameservers: [10.0.0.13]
  register: phoenix_health

- name: Print the table
  ansible.builtin.debug:
    msg: "{{ phoenix_health.table }}"

- name: Read the Proxmox state of every guest
  thinkheads.phoenix.proxmox_guest_info:
    api_url: https://10.0.0.13:8006
    api_token_id: phoenix@pve!ansible
    api_token_secret: "{{ vault_pve_token_secret }}"
  register: phoenix_pve_state
  failed_when: false

- name: Check the platform with the Proxmox state, failing on warnings too (firewall drift, a missing API key)
  thinkheads.phoenix.phoenix_health:
    guests: "{{ groups['phoenix'] | map('extract', hostvars, 'phoenix_guest') | list }}"
    hypervisor: "{{ phoenix_hypervisor }}"
    stacks: "{{ phoenix_stacks }}"
    domain: internal.thinkheads.ai
    pve_guests: "{{ phoenix_pve_state.guests | default(omit) }}"
    pve_error: "{{ phoenix_pve_state.msg if phoenix_pve_state.failed | default(false) else omit }}"
    ca_data: "{{ lookup('ansible.builtin.file', 'files/step-ca-root.crt') }}"
    vllm_api_key: "{{ vault_vllm_api_key }}"
    fail_on: [fail, warn]
  register: phoenix_health

- name: Fail when the platform is not healthy
  ansible.builtin.fail:
    msg: "{{ phoenix_health.problems | map(attribute='check') | join(', ') }}"
  when: not phoenix_health.healthy

- name: Quick check of DNS, the gateway and Step-CA only, with Traefik's ping measured on its guest
  thinkheads.phoenix.phoenix_health:
    guests: "{{ groups['phoenix'] | map('extract', hostvars, 'phoenix_guest') | list }}"
    hypervisor: "{{ phoenix_hypervisor }}"
    stacks: "{{ phoenix_stacks }}"
    ca_file: /etc/phoenix/step-ca-root.crt
    nameservers: [10.0.0.13]
    skip: [proxmox, firewall, portainer, portainer_agent, qdrant, vllm]
    extra_rows:
      - {section: traefik, check: guest 102 ping (on the guest), target: "http://127.0.0.1:8080/ping", status: ok,
         detail: HTTP 200 OK}
    timeout: 2.0
    retries: 0
  register: phoenix_health
'''

RETURN = r'''
rows:
  description: One row per check, in table order.
  returned: always
  type: list
  elements: dict
  sample:
    - {section: step_ca, check: guest 103 /health, target: "https://ca.internal.thinkheads.ai:9000/health",
       status: ok, detail: "HTTP 200, TLS by ThinkHeads Internal Intermediate CA", ms: 12}
table:
  description: The rows as aligned text lines (header, rule, one line per check, a summary line).
  returned: always
  type: list
  elements: str
  sample:
    - "SECTION  CHECK                 TARGET                                         STATUS  DETAIL                     MS"
    - "-------  --------------------  ---------------------------------------------  ------  -------------------------  --"
    - "step_ca  guest 103 /health     https://ca.internal.thinkheads.ai:9000/health  ok      HTTP 200, TLS verified     12"
    - "vllm     guest 950 /v1/models  https://10.0.0.150:8000/v1/models              WARN    HTTP 401: no vllm_api_key  8"
    - "2 checks: 1 ok, 1 warn, 0 fail, 0 n/a"
healthy:
  description: Whether no row has a status in O(fail_on).
  returned: always
  type: bool
  sample: true
problems:
  description: The rows with a status in O(fail_on).
  returned: always
  type: list
  elements: dict
  sample:
    - {section: dns, check: qdrant.internal.thinkheads.ai, target: 10.0.0.13, status: fail,
       detail: "NXDOMAIN (expected 10.0.0.153)", ms: 3}
summary:
  description: Number of rows per status.
  returned: always
  type: dict
  sample: {ok: 20, warn: 1, fail: 0, "n/a": 3}
seconds:
  description: Wall-clock time of all checks together.
  returned: always
  type: float
  sample: 1.84
'''

import ssl
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.health import (
    SECTIONS, HealthError, merge_rows, plan_checks, problems, render_table, run_checks, summarize, tls_context,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            guests=dict(type='list', elements='dict', required=True),
            hypervisor=dict(type='dict', default={}),
            stacks=dict(type='dict', default={}),
            domain=dict(type='str', default=''),
            routes=dict(type='dict'),
            dns_records=dict(type='list', elements='dict'),
            pve_guests=dict(type='dict'),
            firewalls=dict(type='dict'),
            pve_error=dict(type='str'),
            ca_file=dict(type='path'),
            ca_data=dict(type='str'),
            validate_certs=dict(type='bool', default=True),
            nameservers=dict(type='list', elements='str', default=[]),
            dns_port=dict(type='int', default=53),
            route_address=dict(type='str', default=''),
            gateway_port=dict(type='int', default=443),
            traefik_ping_scheme=dict(type='str', choices=['http', 'https'], default='http'),
            traefik_ping_port=dict(type='int', default=8080),
            traefik_ping_path=dict(type='str', default='/ping'),
            step_ca_port=dict(type='int', default=9000),
            portainer_server_port=dict(type='int', default=9443),
            portainer_agent_port=dict(type='int', default=9001),
            qdrant_path=dict(type='str', default='/healthz'),
            vllm_scheme=dict(type='str', choices=['http', 'https'], default='https'),
            vllm_key_over_http=dict(type='bool', default=False),
            vllm_api_key=dict(type='str', default='', no_log=True),
            extra_rows=dict(type='list', elements='dict', default=[]),
            skip=dict(type='list', elements='str', choices=list(SECTIONS), default=[]),
            fail_on=dict(type='list', elements='str', choices=['fail', 'warn'], default=['fail']),
            timeout=dict(type='float', default=5.0),
            retries=dict(type='int', default=1),
            concurrency=dict(type='int', default=16),
        ),
        supports_check_mode=True,
    )
    check_options(module, 'phoenix_health')
    params = module.params
    if params['ca_file']:
        try:
            with open(params['ca_file'], 'rb'):
                pass
        except (IOError, OSError) as exc:
            module.fail_json(msg='ca_file %s cannot be read: %s' % (params['ca_file'], exc))
    if params['ca_data']:
        try:
            tls_context(ca_data=params['ca_data'])
        except (ValueError, ssl.SSLError) as exc:
            module.fail_json(msg='ca_data is not a PEM certificate: %s' % exc)
    if params['timeout'] <= 0 or params['concurrency'] < 1 or params['retries'] < 0:
        module.fail_json(msg='timeout must be > 0, concurrency >= 1 and retries >= 0')
    options = dict((k, params[k]) for k in (
        'ca_file', 'ca_data', 'validate_certs', 'nameservers', 'dns_port', 'route_address', 'gateway_port',
        'traefik_ping_scheme', 'traefik_ping_port', 'traefik_ping_path', 'step_ca_port', 'portainer_server_port',
        'portainer_agent_port', 'qdrant_path', 'vllm_scheme', 'vllm_key_over_http', 'vllm_api_key', 'skip', 'timeout',
        'retries'))
    started = time.time()
    try:
        checks = plan_checks(params['guests'], params['hypervisor'], params['stacks'], params['domain'], options,
                             pve_guests=params['pve_guests'], firewalls=params['firewalls'],
                             pve_error=params['pve_error'], plan=params['routes'], records=params['dns_records'])
    except HealthError as exc:
        module.fail_json(msg=str(exc))
    try:
        checks = merge_rows(checks, params['extra_rows'])
    except HealthError as exc:
        module.fail_json(msg=str(exc))
    rows = run_checks(checks, params['concurrency'])
    bad = problems(rows, params['fail_on'])
    module.exit_json(changed=False, rows=rows, table=render_table(rows), healthy=not bad, problems=bad,
                     summary=summarize(rows), seconds=round(time.time() - started, 2))


if __name__ == '__main__':
    main()
