#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: portainer_bootstrap
short_description: First-run setup of Portainer CE - admin, API access token, environments by name
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Creates the first administrator when Portainer has none (C(POST /api/users/admin/init)); an existing admin
    (C(GET /api/users/admin/check) answering 204, or HTTP 409 on init) is not an error.
  - Portainer refuses logins and token creations from an address that made more than 10 of them in a burst, for an
    hour (HTTP 403 "Access denied"); the module reuses a valid token so that repeated runs do not log in, and
    explains that answer when it gets it.
  - Makes sure an API access token exists for later runs. A token given in O(api_key) or stored in O(token_file)
    is reused while Portainer still accepts it; otherwise the module logs in (JWT), creates a token
    (C(POST /api/users/{id}/tokens)), removes older tokens with the same description, and writes the new one to
    O(token_file) with mode 0600 (on the host the module runs on; use C(delegate_to) to pick controller or target).
  - Registers environments (endpoints) by name - the local Docker socket or a Portainer agent URL. An existing
    environment with the same name is kept. An agent environment with C(tls_skip_verify=false) is registered with
    TLS verification on, against the CA in its C(tls_ca_cert) (Portainer's C(TLSCACertFile)); Portainer then refuses
    an agent whose certificate that CA did not sign.
  - The API token is returned (C(api_key)) only with O(return_api_key=true), never in a failure; prefer
    O(token_file). Register the result of a task that asks for it only with C(no_log).
options:
  url:
    description: Portainer's URL. Env C(PHOENIX_PORTAINER_URL).
    type: str
    required: true
  username:
    description: Administrator name (created when Portainer has no admin yet).
    type: str
    default: admin
  password:
    description: Administrator password (Portainer requires at least 12 characters).
    type: str
    required: true
  init_admin:
    description: Create the administrator when none exists.
    type: bool
    default: true
  api_key:
    description: A token to reuse when it is still valid.
    type: str
  token_file:
    description: File that holds the token between runs (read first, written with mode 0600 when a token is created).
    type: path
  token_description:
    description: Description of the token in Portainer (older tokens with it are removed on rotation).
    type: str
    default: thinkheads.phoenix
  rotate_token:
    description: Create a new token even when the stored one is valid.
    type: bool
    default: false
  return_api_key:
    description:
      - Return the API token in C(api_key). Off by default, so that a result (or a log of it) does not carry it;
        later tasks read O(token_file). Never returned in a failure.
    type: bool
    default: false
  endpoints:
    description:
      - Environments to register, each C(name), C(type) (V(local) for a Docker socket or V(agent)) and C(url)
        (V(unix:///var/run/docker.sock) by default for V(local); V(tcp://host:9001) for V(agent)).
      - C(tls) (bool) talks TLS to the environment; C(tls_skip_verify) (bool, default V(false) when C(tls) is set)
        skips the verification of its certificate; otherwise C(tls_ca_cert), the path of a PEM CA bundle on the host
        the module runs on, is what Portainer verifies it with (required then).
      - A Portainer agent (C(portainer/agent)) generates a self-signed certificate at every start and cannot serve
        another one, so a real agent is registered with C(tls_skip_verify=true); its C(AGENT_SECRET) is what
        authenticates the server to it (see docs/roles/portainer.md).
    type: list
    elements: dict
    default: []
  validate_certs:
    description: Verify Portainer's TLS certificate. Env C(PHOENIX_PORTAINER_VALIDATE_CERTS).
    type: bool
    default: true
  ca_path:
    description: CA bundle to verify Portainer's certificate with. Env C(PHOENIX_PORTAINER_CA_PATH).
    type: path
  api_timeout:
    description: Seconds per API request.
    type: int
    default: 30
  api_retries:
    description: Retries (with exponential backoff) on connection errors and HTTP 502/503/504.
    type: int
    default: 5
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
'''

EXAMPLES = r'''
- name: Bootstrap Portainer and keep its API token on the controller
  thinkheads.phoenix.portainer_bootstrap:
    url: https://10.0.0.111:9443
    password: "{{ vault_portainer_admin_password }}"
    ca_path: /etc/phoenix/step-root.pem
    token_file: "{{ playbook_dir }}/../.phoenix/portainer.token"
    endpoints:
      - name: primary
        type: local
      - name: worker-1002
        type: agent
        url: tcp://10.0.0.112:9001
  delegate_to: localhost
  no_log: true
  register: portainer_boot

- name: Rotate the API token (a new one replaces the stored one and older tokens of that description)
  thinkheads.phoenix.portainer_bootstrap:
    url: https://portainer.internal.thinkheads.ai:9443
    password: "{{ vault_portainer_admin_password }}"
    ca_path: /etc/phoenix/step-root.pem
    token_file: /root/.phoenix/portainer.token
    token_description: phoenix-sync
    rotate_token: true
  no_log: true

- name: Check an existing admin and token without creating an admin, and register the agent of a second worker
  thinkheads.phoenix.portainer_bootstrap:
    url: https://10.0.0.111:9443
    username: phoenix-admin
    password: "{{ vault_portainer_admin_password }}"
    init_admin: false
    api_key: "{{ vault_portainer_api_key }}"
    return_api_key: true
    ca_path: /etc/phoenix/step-root.pem
    endpoints:
      - name: worker-1003
        type: agent
        url: tcp://10.0.0.113:9001
        tls: true
        tls_skip_verify: true
    api_timeout: 10
    api_retries: 2
  delegate_to: localhost
  no_log: true
  register: portainer_boot
'''

RETURN = r'''
api_key:
  description: The API access token (secret).
  returned: with O(return_api_key=true), on success, not in check mode when a token had to be created
  type: str
  sample: ptr_3x1Q0bW5nq6Xo2uH9oVvVd3QmZ1jR0o8xXbJ4hA7kTs=
admin_created:
  description: Whether this run created the administrator.
  returned: always
  type: bool
  sample: false
token_created:
  description: Whether this run created a token.
  returned: always
  type: bool
  sample: true
user_id:
  description: Portainer ID of the administrator.
  returned: when known
  type: int
  sample: 1
endpoints:
  description: Environment IDs by name (every environment Portainer has).
  returned: always
  type: dict
  sample: {primary: 1, worker-1002: 2}
version:
  description: Portainer's version (C(GET /api/system/status), or C(GET /api/status) where the former is missing).
  returned: always
  type: str
  sample: 2.27.9
api_calls:
  description: Requests made, per method and path template.
  returned: always
  type: dict
  sample: {"GET /api/system/status": 1, "GET /api/users/admin/check": 1, "GET /api/users/me": 1,
           "GET /api/endpoints": 2, "POST /api/endpoints": 1}
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import (
    ENDPOINT_CREATE_AGENT, ENDPOINT_CREATE_LOCAL, PortainerClient, PortainerError, portainer_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    conn = portainer_argument_spec()
    conn['url']['required'] = True
    conn['api_retries']['default'] = 5
    del conn['username']
    del conn['password']
    spec = dict(
        username=dict(type='str', default='admin'),
        password=dict(type='str', required=True, no_log=True),
        init_admin=dict(type='bool', default=True),
        token_file=dict(type='path'),
        token_description=dict(type='str', default='thinkheads.phoenix', no_log=False),
        rotate_token=dict(type='bool', default=False),
        return_api_key=dict(type='bool', default=False, no_log=False),
        endpoints=dict(type='list', elements='dict', default=[]),
    )
    spec.update(conn)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    check_options(module, 'portainer_bootstrap')
    p = module.params
    check = module.check_mode
    result = {'changed': False, 'admin_created': False, 'token_created': False}
    for entry in p['endpoints']:
        if not entry.get('name') or entry.get('type', 'local') not in ('local', 'agent'):
            module.fail_json(msg='each endpoint needs a name and a type of local or agent (got %r)' % (entry,))
        if entry.get('type') == 'agent' and not entry.get('url'):
            module.fail_json(msg='agent endpoint %s needs a url (tcp://host:9001)' % entry['name'])
        if entry.get('tls') and not entry.get('tls_skip_verify'):
            ca = entry.get('tls_ca_cert')
            if not ca or not os.path.isfile(ca):
                module.fail_json(msg='endpoint %s: TLS with verification needs tls_ca_cert, the path of a PEM CA bundle '
                                 '(got %r); or set tls_skip_verify' % (entry['name'], ca))

    client = PortainerClient(url=p['url'], username=p['username'], password=p['password'],
                             validate_certs=p['validate_certs'], ca_path=p['ca_path'], api_timeout=p['api_timeout'],
                             api_retries=p['api_retries'])
    try:
        result['version'] = (client.status() or {}).get('Version')
        if not client.admin_exists():
            if not p['init_admin']:
                module.fail_json(msg='Portainer has no administrator and init_admin is false', api_calls=client.calls)
            result['changed'] = True
            if not check:
                _user, created = client.admin_init(p['username'], p['password'])
                result['admin_created'] = created
            else:
                result['admin_created'] = True

        # the token: reuse a valid one, else create
        candidate = p['api_key']
        if not candidate and p['token_file'] and os.path.isfile(p['token_file']):
            with open(p['token_file']) as handle:
                candidate = handle.read().strip() or None
        valid = False
        if candidate and not p['rotate_token'] and not (check and result['admin_created']):
            probe = PortainerClient(url=p['url'], api_key=candidate, validate_certs=p['validate_certs'],
                                    ca_path=p['ca_path'], api_timeout=p['api_timeout'], api_retries=p['api_retries'])
            probe.calls = client.calls
            probe.log = client.log
            try:
                me = probe.me()
                valid = True
                result['user_id'] = me['Id']
                client.api_key = candidate
            except PortainerError as exc:
                if exc.status not in (401, 403):
                    raise
        if candidate:
            _hide_unless_returned(module, candidate)
        if valid:
            result['api_key'] = candidate
            if p['token_file'] and not check:
                _write_token(module, p['token_file'], candidate, result)
        elif check and result['admin_created']:
            result['token_created'] = True
        else:
            me = client.me()
            result['user_id'] = me['Id']
            result['changed'] = True
            result['token_created'] = True
            if not check:
                old = [t for t in client.tokens(me['Id']) if t.get('description') == p['token_description']]
                created = client.create_token(me['Id'], p['token_description'], p['password'])
                raw = created['rawAPIKey']
                _hide_unless_returned(module, raw)
                for token in old:
                    client.delete_token(me['Id'], int(token['id']))
                result['api_key'] = raw
                if p['token_file']:
                    _write_token(module, p['token_file'], raw, result)

        # environments by name
        endpoints = {}
        if not (check and result['admin_created']):
            endpoints = dict((e['Name'], e['Id']) for e in client.endpoints())
        for entry in p['endpoints']:
            if entry['name'] in endpoints:
                continue
            result['changed'] = True
            if check:
                endpoints[entry['name']] = None
                continue
            kind = ENDPOINT_CREATE_AGENT if entry.get('type') == 'agent' else ENDPOINT_CREATE_LOCAL
            url = entry.get('url') or ('unix:///var/run/docker.sock' if kind == ENDPOINT_CREATE_LOCAL else None)
            ca_pem = None
            if entry.get('tls') and not entry.get('tls_skip_verify'):
                with open(entry['tls_ca_cert']) as handle:
                    ca_pem = handle.read()
            created = client.create_endpoint(entry['name'], kind, url=url, tls=bool(entry.get('tls')),
                                             tls_skip_verify=bool(entry.get('tls_skip_verify')), tls_ca_cert=ca_pem)
            endpoints[entry['name']] = created['Id']
        result['endpoints'] = endpoints
    except PortainerError as exc:
        result.pop('api_key', None)     # never in a failure
        module.fail_json(msg=str(exc), api_calls=client.calls, **result)
    if not p['return_api_key']:
        result.pop('api_key', None)
    result['api_calls'] = client.calls
    module.exit_json(**result)


def _hide_unless_returned(module, token):
    """The token is masked in every output unless the caller asked for it (return_api_key)."""
    if module.params['return_api_key']:
        module.no_log_values.discard(token)
    else:
        module.no_log_values.add(token)


def _write_token(module, path, token, result):
    current = None
    if os.path.isfile(path):
        with open(path) as handle:
            current = handle.read().strip()
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    if current != token:
        fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(token + '\n')
        os.rename(path + '.tmp', path)
        result['changed'] = True
    if (os.stat(path).st_mode & 0o777) != 0o600:
        os.chmod(path, 0o600)
        result['changed'] = True


if __name__ == '__main__':
    main()
