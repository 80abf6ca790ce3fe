# -*- coding: utf-8 -*-
"""portainer_stack and portainer_stack_info through ansible, against the Portainer test double in process, which
deploys to an in-memory Docker engine (tests/unit/fake_docker.py): no Docker needed. tests/swarm runs the same
module against the double on a real Swarm.

Portainer's rules the module depends on are the double's (tests/unit/test_portainersim.py): the stack list's
EndpointID filter never returns a Swarm stack, names are normalised, Env is null when none was given. Each test
shows the change, the repeat without change, check mode without a write, the diff without a secret, or a clear
error before any write. The tests run in order on one double.
"""

import hashlib
import json

import pytest

from fake_docker import SWARM_ID, FakeEngine, start_double
from modrun import run_module

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerClient

PASSWORD = 'unit-stack-password-1234'
SECRET = 'db-pass-5b9e1c7a2d'            # secret by its name (DB_PASSWORD)
FLAGGED = 'flagged-3c1f8e0b6a'           # secret only because secret_env_names lists it
ROTATED = 'db-pass-rotated-77aa10'
COMPOSE = """version: '3.8'
services:
  web:
    image: guest:latest
    environment:
      DB_PASSWORD: ${DB_PASSWORD}
      GREETING: ${GREETING:-hello}
    deploy:
      replicas: 2
"""
NAME = 'phx-unit'


class Lab:
    def __init__(self, tmp):
        self.engine = FakeEngine()
        self.httpd, self.url = start_double(tmp, self.engine, PASSWORD, ban=300.0)   # outlasts an ansible start on a busy machine
        self.key = PortainerClient(self.url, username='admin', password=PASSWORD).create_token(
            1, 'unit', PASSWORD)['rawAPIKey']
        self.client = PortainerClient(self.url, api_key=self.key)

    def run(self, args, check=False, conn=None):
        full = dict(conn or {'url': self.url, 'api_key': self.key})
        full.update(args)
        module = 'portainer_stack_info' if args.get('_info') else 'portainer_stack'
        full.pop('_info', None)
        return run_module(module, full, check=check)

    def clear(self):
        del self.httpd.sim.requests[:]

    def writes(self):
        return [(r['method'], r['path']) for r in self.httpd.sim.requests if r['method'] != 'GET']

    def close(self):
        self.httpd.shutdown()
        self.engine.close()


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp('portainer-stack'))
    yield lab
    lab.close()


def ok(result):
    assert not result.get('failed'), json.dumps(result, indent=1)[:4000]
    return result


def args(**extra):
    base = {'name': NAME, 'compose': COMPOSE, 'env': {'DB_PASSWORD': SECRET, 'GREETING': 'hi', 'FLAG': FLAGGED},
            'secret_env_names': ['FLAG'], 'wait_timeout': 20}
    base.update(extra)
    return base


def no_secret(result):
    text = json.dumps(result)
    for value in (SECRET, FLAGGED, ROTATED):
        assert value not in text, 'secret %s in %s' % (value, text[:3000])


def test_bad_input_fails_before_any_request(lab):
    lab.clear()
    bad = lab.run(args(compose='services: {}\n'))
    assert bad['failed'] and 'needs a "services" mapping' in bad['msg'] and bad['api_calls'] == {}
    nameless = lab.run(args(name='***'))
    assert nameless['failed'] and 'none of the characters Portainer keeps' in nameless['msg']
    missing = lab.run({'name': NAME})
    assert missing['failed'] and 'needs compose' in missing['msg']
    assert lab.httpd.sim.requests == []


def test_rendered_stack_is_taken_without_a_policy_check(lab):
    """The ports/expose rule runs once, at render time (render_stack, at the level platform_rules gives it): a
    stack rendered in warning mode keeps its ports, and the module deploys what it is given (here in check mode:
    it plans the create, nothing is written)."""
    lab.clear()
    compose = COMPOSE.replace('    image:', '    ports: ["80:80"]\n    image:', 1)
    planned = ok(lab.run(args(name='phx-unit-ports', compose=compose), check=True))
    assert planned['changed'] and planned['action'] == 'created', planned
    assert lab.writes() == []


def test_create_check_mode_then_create(lab):
    lab.clear()
    checked = ok(lab.run(args(), check=True))
    assert checked['changed'] and checked['stack_action'] == 'created' and checked['deploys'] == 0
    assert lab.writes() == [] and lab.engine.stack_services(NAME) == {}
    assert '********' in checked['diff'][1]['after'] and 'GREETING: hi' in checked['diff'][1]['after']
    no_secret(checked)
    created = ok(lab.run(args()))
    assert created['changed'] and created['stack_action'] == 'created' and created['deploys'] == 1
    assert [(s['name'], s['running']) for s in created['services']] == [('phx-unit_web', 2)]
    no_secret(created)
    env = lab.engine.stack_services(NAME)['phx-unit_web']['Spec']['TaskTemplate']['ContainerSpec']['Env']
    assert 'DB_PASSWORD=%s' % SECRET in env and 'GREETING=hi' in env


def test_second_run_finds_the_swarm_stack_and_changes_nothing(lab):
    # the issue: Portainer's filters={"EndpointID":1} never lists a Swarm stack, so a lookup through that filter
    # missed the stack and the second run tried to create it again (HTTP 409)
    by_endpoint = lab.client.request('GET', '/api/stacks', query={'filters': json.dumps({'EndpointID': 1})})
    by_swarm = lab.client.request('GET', '/api/stacks', query={'filters': json.dumps({'SwarmID': SWARM_ID})})
    assert by_endpoint == [] and [s['Name'] for s in by_swarm] == [NAME]
    lab.clear()
    again = ok(lab.run(args()))
    assert again['changed'] is False and again['stack_action'] == 'none' and again['deploys'] == 0
    assert again['api_calls'] == {'GET /api/endpoints': 1, 'GET /api/stacks': 1, 'GET /api/stacks/{id}/file': 1}
    assert lab.writes() == []
    checked = ok(lab.run(args(), check=True))
    assert checked['changed'] is False


def test_env_change_check_mode_then_update(lab):
    changed = args(env={'DB_PASSWORD': ROTATED, 'GREETING': 'hello again', 'FLAG': FLAGGED})
    lab.clear()
    checked = ok(lab.run(changed, check=True))
    assert checked['changed'] and checked['stack_action'] == 'updated' and lab.writes() == []
    no_secret(checked)
    before, after = checked['diff'][1]['before'], checked['diff'][1]['after']
    assert 'GREETING: hi' in before and 'GREETING: hello again' in after
    assert before.count('********') == after.count('********') == 2        # DB_PASSWORD and FLAG on both sides
    assert before != after
    # keyed by the API key: FLAG (unchanged) has the same mask on both sides, and no mask is an unsalted sha256
    assert before.count('(hmac:') == 2 and [ln for ln in before.split('\n') if ln.startswith('FLAG')] == \
        [ln for ln in after.split('\n') if ln.startswith('FLAG')]
    for value in (SECRET, ROTATED, FLAGGED):
        assert hashlib.sha256(value.encode()).hexdigest()[:8] not in json.dumps(checked)
    # the rollout takes a few polls: the run waits for Docker's "completed", not for the old tasks still running
    lab.engine.update_plan = ['pending', 'updating', 'completed']
    try:
        updated = ok(lab.run(changed))
    finally:
        lab.engine.update_plan = None
    assert updated['stack_action'] == 'updated' and updated['api_calls']['PUT /api/stacks/{id}'] == 1
    assert [(s['running'], s['update_state']) for s in updated['services']] == [(2, 'completed')]
    no_secret(updated)
    assert lab.writes() == [('PUT', '/api/stacks/1')]
    assert ok(lab.run(changed))['changed'] is False


def test_dropped_secret_variable_is_masked_in_the_diff(lab):
    # FLAG leaves the env and secret_env_names together: nothing says any more that its value is a secret
    dropped = args(env={'DB_PASSWORD': ROTATED, 'GREETING': 'hello again'}, secret_env_names=[])
    checked = ok(lab.run(dropped, check=True))
    assert checked['changed'] and 'FLAG: \'********' in checked['diff'][1]['before']
    assert 'FLAG' not in checked['diff'][1]['after']
    no_secret(checked)
    result = ok(lab.run(dropped))
    no_secret(result)
    assert ok(lab.run(dropped))['changed'] is False


def test_upper_case_name_is_portainers_lower_case_stack(lab):
    upper = args(name='PCheck-Upper', env={'DB_PASSWORD': SECRET})
    created = ok(lab.run(upper))
    assert created['changed'] and created['name'] == 'pcheck-upper'
    assert any('"pcheck-upper"' in w for w in created.get('warnings', []))
    assert set(lab.engine.stack_services('pcheck-upper')) == {'pcheck-upper_web'}    # waited for under that name
    assert lab.client.stack_by_name('pcheck-upper', 1)['Name'] == 'pcheck-upper'
    again = ok(lab.run(upper))
    assert again['changed'] is False and again['deploys'] == 0
    gone = ok(lab.run({'name': 'PCheck-Upper', 'state': 'absent', 'wait_timeout': 20}))
    assert gone['changed'] and gone['stack_action'] == 'deleted' and lab.engine.stack_services('pcheck-upper') == {}
    no_secret(gone)


def test_a_compose_stack_of_that_name_is_refused(lab):
    project = lab.httpd.sim.store.db['stacks'][0]['ProjectPath']
    lab.httpd.sim.store.db['stacks'].append({
        'Id': 90, 'Name': 'phx-compose', 'Type': 2, 'EndpointId': 1, 'SwarmId': '', 'EntryPoint': 'docker-compose.yml',
        'Env': None, 'Status': 1, 'ProjectPath': project})
    lab.clear()
    refused = lab.run(args(name='phx-compose'))
    assert refused['failed'] and 'not a Swarm stack' in refused['msg'] and lab.writes() == []
    info = ok(lab.run({'_info': True}))
    assert [s['name'] for s in info['stacks']] == [NAME]         # Swarm stacks of the environment only
    assert info['changed'] is False and info['endpoint_id'] == 1
    lab.httpd.sim.store.db['stacks'].pop()


def test_stack_without_env_is_null_env_and_unchanged(lab):
    compose = "version: '3.8'\nservices:\n  one:\n    image: guest:latest\n"
    lab.client.request('POST', '/api/stacks/create/swarm/string', query={'endpointId': 1},
                       body={'name': 'phx-noenv', 'swarmID': SWARM_ID, 'stackFileContent': compose})
    assert lab.client.stack_by_name('phx-noenv', 1)['Env'] is None
    same = ok(lab.run({'name': 'phx-noenv', 'compose': compose, 'wait_timeout': 20}))
    assert same['changed'] is False
    assert ok(lab.run({'name': 'phx-noenv', 'state': 'absent', 'wait_timeout': 20}))['changed']


def test_absent_check_mode_then_removal(lab):
    lab.clear()
    checked = ok(lab.run({'name': NAME, 'state': 'absent'}, check=True))
    assert checked['changed'] and checked['stack_action'] == 'deleted' and lab.writes() == []
    before = checked['diff'][1]['before']
    assert before.count('********') == 2 and 'hello again' not in before     # every removed value is masked
    assert checked['diff'][1]['after'] == ''
    no_secret(checked)
    gone = ok(lab.run({'name': NAME, 'state': 'absent', 'wait_timeout': 20}))
    assert gone['changed'] and gone['deploys'] == 1 and lab.engine.stack_services(NAME) == {}
    no_secret(gone)
    lab.clear()
    again = ok(lab.run({'name': NAME, 'state': 'absent'}))
    assert again['changed'] is False and lab.writes() == []


def test_writes_whose_answer_is_lost_continue_from_what_portainer_holds(lab):
    # the create is carried out but its answer lost: sent again it would meet HTTP 409 for our own stack, and with
    # adopt=true the stack was removed and created again
    lost = args(name='phx-lost', adopt=True)
    lab.client.request('POST', '/sim/faults', auth=False,
                       body={'method': 'POST', 'path': '/api/stacks/create/swarm/string', 'fault': 'drop'})
    lab.clear()
    created = ok(lab.run(lost))
    assert created['stack_action'] == 'created' and created['stack_id'] == lab.client.stack_by_name('phx-lost', 1)['Id']
    assert lab.writes() == [('POST', '/api/stacks/create/swarm/string')]
    assert [(s['name'], s['running']) for s in created['services']] == [('phx-lost_web', 2)]
    # an update answered by a proxy's 504 after Portainer carried it out: not sent again
    lab.client.request('POST', '/sim/faults', auth=False, body={'method': 'PUT', 'path': '/api/stacks/.*', 'fault': '504'})
    lab.clear()
    updated = ok(lab.run(dict(lost, env={'DB_PASSWORD': ROTATED, 'GREETING': 'after 504', 'FLAG': FLAGGED})))
    assert updated['stack_action'] == 'updated' and lab.writes() == [('PUT', '/api/stacks/%d' % created['stack_id'])]
    no_secret(updated)
    gone = ok(lab.run({'name': 'phx-lost', 'state': 'absent', 'wait_timeout': 20}))
    assert gone['changed'] and lab.engine.stack_services('phx-lost') == {}


def test_compose_secrets_become_versioned_swarm_secrets(lab):
    """Item: secrets a compose file declares become Swarm secrets, not env values visible in docker service inspect;
    a changed value rolls out under a new version and the old version goes after convergence."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_render import render
    compose = 'services:\n  web:\n    image: guest:latest\n    secrets: [db_pass]\n' \
              'secrets:\n  db_pass:\n    environment: DB_PASS\n'
    stack = {'name': 'phx-sec', 'environment': 'production', 'files': [], 'services': {},
             'variables': [{'name': 'DB_PASS', 'value_from': 'vault_db_pass'}]}

    def rendered(value):
        out = render(compose, 'phx-sec', stack, values={'vault_db_pass': value})
        return {'name': 'phx-sec', 'compose': out['compose'], 'env': out['env'], 'secrets': out['secrets'],
                'wait_timeout': 20}

    def secrets():
        return sorted(s['Spec']['Name'] for s in lab.engine.secrets.values())

    def service_refs():
        spec = lab.engine.stack_services('phx-sec')['phx-sec_web']['Spec']['TaskTemplate']['ContainerSpec']
        return spec.get('Env'), [r['SecretName'] for r in spec.get('Secrets') or []]

    lab.clear()
    checked = ok(lab.run(rendered(SECRET), check=True))
    assert checked['changed'] and lab.writes() == [] and secrets() == []
    created = ok(lab.run(rendered(SECRET)))
    no_secret(checked)
    no_secret(created)
    (first,) = created['secrets']
    assert first.startswith('phx-sec_db_pass_') and secrets() == [first]
    env, refs = service_refs()
    assert refs == [first] and not any(SECRET in e for e in env or [])
    assert SECRET not in json.dumps(lab.httpd.sim.store.db['stacks'])     # not in Portainer's stack (Env, file)
    assert hashlib.sha256(SECRET.encode()).hexdigest()[:10] not in first    # keyed, not a plain hash
    lab.clear()
    again = ok(lab.run(rendered(SECRET)))
    assert again['changed'] is False and lab.writes() == [] and again['secrets_removed'] == []
    # a new value: a new version, the service rolls out to it, the old version is removed after convergence
    lab.clear()
    rotated = ok(lab.run(rendered(ROTATED)))
    no_secret(rotated)
    (second,) = rotated['secrets']
    assert second != first and rotated['stack_action'] == 'updated' and rotated['secrets_removed'] == [first]
    assert secrets() == [second] and service_refs()[1] == [second]
    assert ok(lab.run(rendered(ROTATED)))['changed'] is False
    gone = ok(lab.run({'name': 'phx-sec', 'state': 'absent', 'wait_timeout': 20}))
    assert gone['changed'] and secrets() == []        # docker stack rm removes the stack's labelled secrets


def test_banned_login_is_explained(lab):
    # The limiter refills one login a second: its clock stands still during the burst and the module's run, so a
    # slow machine cannot refill the bucket between the attempts (the clock starts at the real clock's reading).
    limiter = lab.httpd.sim.limiter
    real_clock, now = limiter.clock, [limiter.clock()]
    with limiter.lock:
        limiter.clock = lambda: now[0]
    try:
        for _attempt in range(12):
            lab.client.request('POST', '/api/auth', body={'Username': 'nobody', 'Password': 'x'}, auth=False,
                               expect=(403, 422))
        lab.clear()
        banned = lab.run(args(), conn={'url': lab.url, 'username': 'admin', 'password': PASSWORD})
    finally:
        with limiter.lock:
            limiter.clock = real_clock
    assert banned.get('failed'), banned
    assert 'HTTP 403' in banned['msg'] and 'api_key' in banned['msg']
    assert 'token_file' in banned['msg'] and lab.writes() == [('POST', '/api/auth')]
    # the ban lifted at once (its end is tested on the rate limiter itself, tests/unit/test_portainersim.py)
    with limiter.lock:
        limiter.clients.clear()
    answer = lab.client.request('POST', '/api/auth', body={'Username': 'admin', 'Password': PASSWORD}, auth=False)
    assert 'jwt' in answer
