# -*- coding: utf-8 -*-
"""portainer_stack and portainer_bootstrap through Portainer's API, on a real 2-node Swarm.

The lab stacks (lab/stacks/qdrant_service, thinkheads_ai_app) are rendered for production with
thinkheads.phoenix's renderer and deployed under test names (phx-swarm-*), so that a real Portainer
(PHOENIX_PORTAINER_URL) can be targeted without touching its real stacks. The tests run in order.
"""

import json
import os
import stat
import threading

import pytest

import swarm_lab

from phoenix_testlib import REPO, wait_equal
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import render

SECRETS = {'vault_qdrant_api_key': 'qdrant-key-7f3a9c1e5b',
           'vault_thinkheads_db_pass': 'db-pass-4c8e2a6d0f'}
NAMES = {'qdrant_service': 'phx-swarm-qdrant', 'thinkheads_ai_app': 'phx-swarm-app'}
SMALL = """version: '3.8'
services:
%s"""
SMALL_SERVICE = """  %s:
    image: phoenix-lab/guest:latest
    command: ["sleep", "100000"]
    stop_grace_period: 1s
    environment:
      GREETING: ${GREETING:-hello}
    deploy:
      placement:
        constraints: [node.labels.phoenix.role == worker]
"""


def small(*services):
    return SMALL % ''.join(SMALL_SERVICE % s for s in services)


@pytest.fixture(scope='module')
def config():
    return load_config(os.path.join(REPO, 'lab', 'etc'), os.path.join(REPO, 'lab', 'stacks'))


def rendered(config, stack, secrets=None, **kwargs):
    model = config.stacks[stack]
    with open(model['compose_file']) as handle:
        text = handle.read()
    return render(text, NAMES[stack], model, 'production', values=secrets or SECRETS, **kwargs)


def deploy_args(out, **extra):
    args = {'name': out['name'], 'compose': out['compose'], 'env': out['env'],
            'secret_env_names': out['secret_env_names'], 'wait_timeout': 180}
    args.update(extra)
    return args


def ok(result):
    assert not result.get('failed'), json.dumps(result, indent=1)[:4000]
    return result


def test_bootstrap_is_safe_when_an_admin_exists(portainer):
    if not portainer.simulated:
        swarm_lab.require('bootstrap is exercised against the test double only (it would add tokens to a real Portainer)')
    first = portainer.bootstrap
    assert first['admin_created'] is False            # --admin-password-file created it at start
    assert first['token_created'] is True and first['endpoints']['primary']
    assert stat.S_IMODE(os.stat(portainer.token_file).st_mode) == 0o600
    again = ok(portainer.module('portainer_bootstrap', {
        'password': swarm_lab.ADMIN_PASSWORD, 'token_file': portainer.token_file,
        'endpoints': [{'name': 'primary', 'type': 'local'}]}))
    assert again['changed'] is False and again['token_created'] is False
    assert set(again['api_calls']) <= {'GET /api/system/status', 'GET /api/status', 'GET /api/users/admin/check',
                                       'GET /api/users/me', 'GET /api/endpoints'}
    client = portainer.client()
    assert client.admin_init('admin', 'another-long-password') == (None, False)   # HTTP 409, not an error


def test_bad_compose_fails_before_any_api_call(portainer):
    portainer.clear_log()
    # the stack rules (ports/expose) ran at render time; the module still refuses a compose without services
    result = portainer.module('portainer_stack', {'name': 'phx-swarm-bad', 'compose': 'services: {}\n'})
    assert result['failed']
    assert 'needs a "services" mapping' in result['msg'] and 'phx-swarm-bad' in result['msg']
    assert result['api_calls'] == {}
    if portainer.simulated:
        assert portainer.lab.sim_requests() == []


def test_unreachable_portainer_is_a_clear_error(portainer, config):
    out = rendered(config, 'qdrant_service')
    args = deploy_args(out, url='https://%s:9' % swarm_lab.IPS[swarm_lab.MGR] if portainer.simulated
                       else 'https://127.0.0.1:9', api_retries=1)
    result = portainer.module('portainer_stack', args)
    assert result['failed'] and 'unreachable' in result['msg'] and '2 attempts' in result['msg']


def test_deploy_lab_stacks_converge_on_the_worker(portainer, config):
    results = {}

    def deploy(stack):
        results[stack] = portainer.module('portainer_stack', deploy_args(rendered(config, stack)))
    threads = [threading.Thread(target=deploy, args=(s,)) for s in NAMES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results.values():
        ok(result)
        assert result['changed'] and result['stack_action'] == 'created' and result['deploys'] == 1
        assert result['api_calls']['POST /api/stacks/create/swarm/string'] == 1
        assert all(s['converged'] and s['running'] == s['desired'] for s in result['services'])
    app = [s for s in results['thinkheads_ai_app']['services'] if s['name'] == 'phx-swarm-app_app'][0]
    assert app['running'] == 2
    if portainer.simulated:
        wait_equal(lambda: portainer.lab.task_nodes('phx-swarm-app_app'), [swarm_lab.WKR, swarm_lab.WKR],
                   'running tasks of phx-swarm-app_app')
        wait_equal(lambda: portainer.lab.task_nodes('phx-swarm-qdrant_qdrant'), [swarm_lab.WKR],
                   'running tasks of phx-swarm-qdrant_qdrant')
    spec = portainer.services('phx-swarm-qdrant')['phx-swarm-qdrant_qdrant']['Spec']
    assert spec['Labels']['traefik.swarm.network'] == 'phoenix-routed'
    env = spec['TaskTemplate']['ContainerSpec']['Env']
    assert 'QDRANT__SERVICE__API_KEY=%s' % SECRETS['vault_qdrant_api_key'] in env


def test_unchanged_stacks_make_no_deploy_call(portainer, config):
    portainer.clear_log()
    for stack in NAMES:
        result = ok(portainer.module('portainer_stack', deploy_args(rendered(config, stack))))
        assert result['changed'] is False and result['stack_action'] == 'none' and result['deploys'] == 0
        assert all(key.startswith('GET ') for key in result['api_calls'])
        assert result['api_calls'] == {'GET /api/endpoints': 1, 'GET /api/stacks': 1, 'GET /api/stacks/{id}/file': 1}
    if portainer.simulated:
        assert portainer.writes() == []
        assert len(portainer.lab.sim_requests()) == 6


def test_check_mode_writes_nothing_and_diff_masks_secrets(portainer, config):
    changed = dict(SECRETS, vault_qdrant_api_key='qdrant-key-rotated-91d2')
    portainer.clear_log()
    result = ok(portainer.module('portainer_stack', deploy_args(rendered(config, 'qdrant_service', changed)),
                                 check=True))
    assert result['changed'] and result['stack_action'] == 'updated' and result['deploys'] == 0
    text = json.dumps(result)
    assert SECRETS['vault_qdrant_api_key'] not in text and 'qdrant-key-rotated-91d2' not in text
    env_diff = result['diff'][1]
    assert 'QDRANT__SERVICE__API_KEY' in env_diff['after'] and '********' in env_diff['after']
    assert env_diff['before'] != env_diff['after']           # the mask still shows that the value changed
    if portainer.simulated:
        assert portainer.writes() == []


def test_env_change_updates(portainer, config):
    out = rendered(config, 'qdrant_service', env={'PHX_SWARM_MARK': 'env-v2'})
    result = ok(portainer.module('portainer_stack', deploy_args(out, wait=False)))
    assert result['changed'] and result['stack_action'] == 'updated'
    assert result['api_calls']['PUT /api/stacks/{id}'] == 1 and result['deploys'] == 1
    assert 'PHX_SWARM_MARK: env-v2' in result['diff'][1]['after']
    assert 'PHX_SWARM_MARK' not in result['diff'][1]['before']
    again = ok(portainer.module('portainer_stack', deploy_args(out, wait=False)))
    assert again['changed'] is False and again['deploys'] == 0


def test_image_tag_change_updates(portainer, config):
    if not portainer.simulated:
        swarm_lab.require('needs a second local image tag on the swarm nodes')
    for name in (swarm_lab.MGR, swarm_lab.WKR):
        swarm_lab.node(name, 'tag', swarm_lab.GUEST_IMAGE, 'phoenix-lab/guest:phx-swarm-v2')
    out = rendered(config, 'qdrant_service', env={'PHX_SWARM_MARK': 'env-v2'})
    out['compose'] = out['compose'].replace('phoenix-lab/guest:latest', 'phoenix-lab/guest:phx-swarm-v2')
    result = ok(portainer.module('portainer_stack', deploy_args(out, wait=False)))
    assert result['changed'] and result['stack_action'] == 'updated' and result['deploys'] == 1
    wait_equal(lambda: portainer.services('phx-swarm-qdrant')['phx-swarm-qdrant_qdrant']['Spec']['TaskTemplate']
               ['ContainerSpec']['Image'].split('@')[0], 'phoenix-lab/guest:phx-swarm-v2', 'the updated service image')
    assert 'image: phoenix-lab/guest:latest' in result['diff'][0]['before']
    assert 'image: phoenix-lab/guest:phx-swarm-v2' in result['diff'][0]['after']


def test_stack_outside_portainer_conflict_and_adoption(portainer):
    client = portainer.client()
    eid = client.resolve_endpoint(portainer.endpoint)
    client.docker(eid, 'POST', '/services/create', body={
        'Name': 'phx-swarm-adopt_web', 'Labels': {'com.docker.stack.namespace': 'phx-swarm-adopt'},
        'TaskTemplate': {'ContainerSpec': {'Image': 'phoenix-lab/guest:latest', 'Command': ['sleep', '100000']},
                         'Placement': {'Constraints': ['node.labels.phoenix.role == worker']}},
        'Mode': {'Replicated': {'Replicas': 1}}})
    args = {'name': 'phx-swarm-adopt', 'compose': small('web'), 'wait_timeout': 120}
    refused = portainer.module('portainer_stack', args)
    assert refused['failed'] and '409' in refused['msg'] and 'adopt=true' in refused['msg']
    assert client.stack_by_name('phx-swarm-adopt', eid) is None
    checked = ok(portainer.module('portainer_stack', dict(args, adopt=True), check=True))
    assert checked['changed'] and checked['stack_action'] == 'adopted'
    adopted = ok(portainer.module('portainer_stack', dict(args, adopt=True)))
    assert adopted['stack_action'] == 'adopted'
    assert adopted['api_calls']['DELETE /api/stacks/{name}'] == 1          # external removal, by name
    assert adopted['deploys'] == 3                  # the refused create (409), the removal, the create
    assert client.stack_by_name('phx-swarm-adopt', eid) is not None
    assert ok(portainer.module('portainer_stack', dict(args, adopt=True)))['changed'] is False


def test_prune_and_removal(portainer):
    base = {'name': 'phx-swarm-prune', 'wait_timeout': 120}

    def services():
        return set(portainer.services('phx-swarm-prune'))
    ok(portainer.module('portainer_stack', dict(base, compose=small('one', 'two'))))
    wait_equal(services, {'phx-swarm-prune_one', 'phx-swarm-prune_two'}, 'services of phx-swarm-prune')
    kept = ok(portainer.module('portainer_stack', dict(base, compose=small('one'))))
    assert kept['stack_action'] == 'updated'
    assert services() == {'phx-swarm-prune_one', 'phx-swarm-prune_two'}      # without prune, two stays
    ok(portainer.module('portainer_stack', dict(base, compose=small('one'), env={'GREETING': 'x'}, prune=True)))
    wait_equal(services, {'phx-swarm-prune_one'}, 'services of phx-swarm-prune after the prune')
    info = ok(portainer.module('portainer_stack_info', {}))
    assert {'phx-swarm-qdrant', 'phx-swarm-app'} <= set(info['managed'])     # rendered stacks carry the label
    by_name = dict((s['name'], s) for s in info['stacks'])
    assert by_name['phx-swarm-qdrant']['managed'] and not by_name['phx-swarm-prune']['managed']
    removed = {}

    def remove(stack):
        removed[stack] = portainer.module('portainer_stack', {'name': stack, 'state': 'absent', 'wait_timeout': 120})
    threads = [threading.Thread(target=remove, args=(s,)) for s in ('phx-swarm-prune', 'phx-swarm-adopt',
                                                                    'phx-swarm-qdrant', 'phx-swarm-app')]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for stack, gone in removed.items():
        ok(gone)
        # removed again with backoff while Docker still holds the network for stopping tasks: one request or more
        assert gone['changed'] and gone['stack_action'] == 'deleted' and gone['deploys'] >= 1, gone
        wait_equal(lambda s=stack: portainer.services(s), {}, 'services of %s after its removal' % stack)
    again = ok(portainer.module('portainer_stack', {'name': 'phx-swarm-prune', 'state': 'absent'}))
    assert again['changed'] is False


def test_compose_secrets_are_swarm_secrets_not_env(portainer):
    """A compose top-level secret fed by a vault variable is a Swarm secret on the real engine: mounted under
    /run/secrets, absent from the service's env (docker service inspect), versioned, the old version removed."""
    compose = small('sec') + 'secrets:\n  db_pass:\n    environment: DB_PASS\n'
    compose = compose.replace('    environment:\n      GREETING', '    secrets: [db_pass]\n    environment:\n      GREETING')
    model = {'name': 'phx-swarm-sec', 'environment': 'production', 'files': [], 'services': {},
             'variables': [{'name': 'DB_PASS', 'value_from': 'vault_thinkheads_db_pass'}]}

    def deploy(value):
        out = render(compose, 'phx-swarm-sec', model, values={'vault_thinkheads_db_pass': value})
        return ok(portainer.module('portainer_stack', dict(deploy_args(out), secrets=out['secrets'])))

    def stack_secrets():
        return sorted(s['Spec']['Name'] for s in portainer.docker_get('/secrets') or []
                      if s['Spec']['Name'].startswith('phx-swarm-sec_'))

    first = deploy('swarm-secret-one-8d2f')
    assert 'swarm-secret-one-8d2f' not in json.dumps(first)
    spec = portainer.services('phx-swarm-sec')['phx-swarm-sec_sec']['Spec']['TaskTemplate']['ContainerSpec']
    assert [s['SecretName'] for s in spec['Secrets']] == first['secrets'] == stack_secrets()
    assert 'swarm-secret-one-8d2f' not in json.dumps(spec)
    assert deploy('swarm-secret-one-8d2f')['changed'] is False
    second = deploy('swarm-secret-two-3a7c')
    assert second['secrets'] != first['secrets'] and second['secrets_removed'] == first['secrets']
    assert stack_secrets() == second['secrets']
    ok(portainer.module('portainer_stack', {'name': 'phx-swarm-sec', 'state': 'absent', 'wait_timeout': 180}))
    assert stack_secrets() == []
