# -*- coding: utf-8 -*-
"""Portainer's rules that portainer_stack depends on, on the real 2-node Swarm: against the Portainer test double
on the manager (or a real Portainer, PHOENIX_PORTAINER_URL, where the burst test is skipped).

- a Swarm stack is listed by the SwarmID filter and never by the EndpointID filter, and the module still finds it
  (second run unchanged), removes it (check mode first, without a write) and shows no secret in any diff;
- an upper-case name is Portainer's lower-case stack;
- /api/system/status answers without authentication, both auth headers at once are refused;
- a burst of logins from one address bans that address (from the manager, so the controller is not banned).
"""

import json
import ssl
import urllib.error
import urllib.request

import swarm_lab

from phoenix_testlib import wait_equal

TOKEN = 'phx-swarm-token-0c4e9a71b2'
COMPOSE = """version: '3.8'
services:
  web:
    image: phoenix-lab/guest:latest
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    environment:
      PHX_TOKEN: ${PHX_TOKEN}
      GREETING: ${GREETING:-hello}
    deploy:
      placement:
        constraints: [node.labels.phoenix.role == worker]
"""


def ok(result):
    assert not result.get('failed'), json.dumps(result, indent=1)[:4000]
    assert TOKEN not in json.dumps(result)
    return result


def raw(portainer, method, path, headers=None):
    """(status, decoded body) of one request to the Portainer under test."""
    context = ssl.create_default_context(cafile=portainer.conn.get('ca_path'))
    if not portainer.conn.get('validate_certs', True):
        context = ssl._create_unverified_context()
    req = urllib.request.Request(portainer.url + path, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, context=context, timeout=30) as resp:
            status, data = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, data = exc.code, exc.read()
    try:
        return status, json.loads(data.decode() or 'null')
    except ValueError:
        return status, data.decode()


def test_swarm_stack_is_found_by_swarm_id_and_never_by_endpoint_id(portainer):
    args = {'name': 'phx-swarm-filter', 'compose': COMPOSE, 'env': {'PHX_TOKEN': TOKEN, 'GREETING': 'hi'},
            'wait_timeout': 180}
    created = ok(portainer.module('portainer_stack', args))
    assert created['changed'] and created['stack_action'] == 'created'
    client = portainer.client()
    eid = client.resolve_endpoint(portainer.endpoint)
    swarm_id = client.swarm_id(eid)
    by_endpoint = client.request('GET', '/api/stacks', query={'filters': json.dumps({'EndpointID': eid})}) or []
    by_swarm = client.request('GET', '/api/stacks', query={'filters': json.dumps({'SwarmID': swarm_id})}) or []
    assert 'phx-swarm-filter' not in [s['Name'] for s in by_endpoint]
    assert [s['Type'] for s in by_swarm if s['Name'] == 'phx-swarm-filter'] == [1]
    portainer.clear_log()
    again = ok(portainer.module('portainer_stack', args))
    assert again['changed'] is False and again['deploys'] == 0
    if portainer.simulated:
        assert portainer.writes() == []
    checked = ok(portainer.module('portainer_stack', {'name': 'phx-swarm-filter', 'state': 'absent'}, check=True))
    assert checked['changed'] and checked['stack_action'] == 'deleted'
    assert checked['diff'][1]['before'].count('********') == 2 and checked['diff'][1]['after'] == ''
    if portainer.simulated:
        assert portainer.writes() == []
    gone = ok(portainer.module('portainer_stack', {'name': 'phx-swarm-filter', 'state': 'absent',
                                                   'wait_timeout': 120}))
    # one removal; Docker may still hold the stack's network for tasks that are stopping ("in use"), and
    # portainer_stack then removes again with backoff, each a counted request
    assert gone['changed'] and gone['deploys'] >= 1, gone
    wait_equal(lambda: portainer.services('phx-swarm-filter'), {}, 'services of phx-swarm-filter after its removal')
    assert ok(portainer.module('portainer_stack', {'name': 'phx-swarm-filter', 'state': 'absent'}))['changed'] is False


def test_upper_case_name_is_the_lower_case_stack(portainer):
    args = {'name': 'PHX-Swarm-Upper', 'compose': COMPOSE, 'env': {'PHX_TOKEN': TOKEN}, 'wait_timeout': 180}
    created = ok(portainer.module('portainer_stack', args))
    assert created['changed'] and created['name'] == 'phx-swarm-upper'
    assert set(portainer.services('phx-swarm-upper')) == {'phx-swarm-upper_web'}
    assert all(s['converged'] for s in created['services'])
    assert ok(portainer.module('portainer_stack', args))['changed'] is False
    gone = ok(portainer.module('portainer_stack', {'name': 'PHX-Swarm-Upper', 'state': 'absent',
                                                   'wait_timeout': 120}))
    assert gone['changed'] and gone['stack_action'] == 'deleted'
    wait_equal(lambda: portainer.services('phx-swarm-upper'), {}, 'services of phx-swarm-upper after its removal')


def test_status_is_public_and_both_auth_headers_are_refused(portainer):
    status, body = raw(portainer, 'GET', '/api/system/status')
    assert status == 200 and body['Version'] and body['InstanceID']
    if portainer.simulated:
        password = swarm_lab.ADMIN_PASSWORD
    elif portainer.conn.get('password'):
        password = portainer.conn['password']
    else:
        swarm_lab.require('needs PHOENIX_PORTAINER_USERNAME/PASSWORD for a JWT next to the API key')
    if portainer.conn.get('api_key'):
        from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerClient
        jwt = PortainerClient(portainer.url, username=portainer.conn.get('username', 'admin'), password=password,
                              ca_path=portainer.conn.get('ca_path')).login()
        both = {'X-API-Key': portainer.conn['api_key'], 'Authorization': 'Bearer ' + jwt}
        status, body = raw(portainer, 'GET', '/api/users/me', both)
        assert status == 403 and body['message'] == 'api key and auth header are not allowed at the same time'
    status, body = raw(portainer, 'GET', '/api/users/me')
    assert status == 401 and body['message'] == 'A valid authorization token is missing'


BURST = r'''
import json, ssl, urllib.error, urllib.request
ctx = ssl._create_unverified_context()
out = []
for user, password in [('nobody', 'x')] * 12 + [('admin', %r)]:
    req = urllib.request.Request('https://127.0.0.1:9443/api/auth', method='POST',
                                 data=json.dumps({'Username': user, 'Password': password}).encode(),
                                 headers={'Content-Type': 'application/json'})
    try:
        out.append(urllib.request.urlopen(req, context=ctx, timeout=30).status)
    except urllib.error.HTTPError as exc:
        out.append(exc.code)
print(json.dumps(out))
'''


def test_login_burst_bans_only_that_address(portainer):
    if not portainer.simulated:
        swarm_lab.require('a login burst would ban this address from the real Portainer for an hour')
    proc = swarm_lab.docker('exec', '-i', swarm_lab.MGR, 'python3', '-', input=BURST % swarm_lab.ADMIN_PASSWORD)
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answers[:10] == [422] * 10 and 403 in answers[10:12]
    assert answers[-1] == 403                                     # the right password, but the address is banned
    client = portainer.client()
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerClient
    controller = PortainerClient(portainer.url, username='admin', password=swarm_lab.ADMIN_PASSWORD,
                                 ca_path=portainer.conn.get('ca_path'))
    assert controller.me()['Username'] == 'admin'                 # another address logs in
    assert client.me()['Id'] == 1                                  # API keys are not rate-limited
