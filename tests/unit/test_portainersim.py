# -*- coding: utf-8 -*-
"""The Portainer test double (lab/portainersim) keeps Portainer CE 2.23's rules, in process over HTTP, with an
in-memory Docker engine (tests/unit/fake_docker.py): the stack list filter, public and authenticated routes, the
401 wordings, both auth headers refused, the login rate limiter and its ban, token removal, the environment
creation that contacts the engine, and the shapes of stack answers. Each rule cites the Portainer source file the
double follows; the client's reaction (module_utils/portainer.py) is checked next to it.
"""

import http.client
import json
import os
import sys
import urllib.error
import urllib.request

import pytest

from fake_docker import SWARM_ID, FakeEngine, start_double
from phoenix_testlib import REPO

sys.path.insert(0, os.path.join(REPO, 'lab', 'portainersim'))

from portainersim.server import RateLimiter  # noqa: E402

from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import (  # noqa: E402
    BAN_HINT, PortainerClient, PortainerError,
)

PASSWORD = 'unit-double-password-1234'
COMPOSE = "version: '3.8'\nservices:\n  web:\n    image: guest:latest\n"


@pytest.fixture
def double(tmp_path):
    engine = FakeEngine()
    httpd, url = start_double(tmp_path, engine, PASSWORD, ban=1.0)
    yield url, httpd, engine
    httpd.shutdown()
    engine.close()


def call(url, method, path, headers=None, body=None):
    """(status, decoded body or text) of one raw request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw.decode() or 'null')
    except ValueError:
        return status, raw.decode()


def jwt(url):
    status, body = call(url, 'POST', '/api/auth', body={'Username': 'admin', 'Password': PASSWORD})
    assert status == 200, body
    return body['jwt']


def api_key(url):
    client = PortainerClient(url, username='admin', password=PASSWORD)
    return client.create_token(1, 'unit', PASSWORD)['rawAPIKey']


def test_status_is_public_and_unknown_paths_are_404(double):
    url, _httpd, _engine = double
    for path in ('/api/system/status', '/api/status'):           # system/handler.go: both on the public router
        status, body = call(url, 'GET', path)
        assert status == 200 and body['Version'] == '2.23.0' and body['InstanceID']
    assert call(url, 'GET', '/api/nothing/here') == (404, '404 page not found\n')   # gorilla/mux, before auth
    assert call(url, 'PUT', '/api/system/status')[0] == 405
    status, body = call(url, 'GET', '/api/stacks')
    assert status == 401 and body == {'message': 'A valid authorization token is missing', 'details': 'Unauthorized'}
    client = PortainerClient(url)
    assert client.status()['Version'] == '2.23.0' and client.calls == {'GET /api/system/status': 1}


def test_client_falls_back_to_the_deprecated_status_route(double, monkeypatch):
    url, httpd, _engine = double
    routes = tuple(r for r in httpd.RequestHandlerClass.ROUTES if r[1] != r'/api/system/status')
    monkeypatch.setattr(httpd.RequestHandlerClass, 'ROUTES', routes)      # a Portainer without /api/system/status
    client = PortainerClient(url)
    assert client.status()['Version'] == '2.23.0'
    assert client.calls == {'GET /api/system/status': 1, 'GET /api/status': 1}


def test_api_key_and_bearer_together_are_refused(double):
    url, _httpd, _engine = double
    key, token = api_key(url), jwt(url)
    both = {'X-API-Key': key, 'Authorization': 'Bearer ' + token}
    expected = (403, {'message': 'api key and auth header are not allowed at the same time',
                      'details': 'Api key and auth header are not allowed at the same time'})
    for path in ('/api/users/me', '/api/system/status', '/api/nothing/here'):     # csrf.go: on every request
        assert call(url, 'GET', path, both) == expected
    assert call(url, 'GET', '/api/users/me', {'X-API-Key': key})[0] == 200
    assert call(url, 'GET', '/api/users/me', {'Authorization': 'Bearer ' + token})[0] == 200
    headers = PortainerClient(url, api_key=key, username='admin', password=PASSWORD)._headers(True)
    assert 'X-API-Key' in headers and 'Authorization' not in headers


def test_401_wordings(double):
    url, httpd, _engine = double
    invalid = (401, {'message': 'Invalid JWT token', 'details': 'Unauthorized'})       # bouncer.go mwAuthenticateFirst
    assert call(url, 'GET', '/api/users/me', {'X-API-Key': 'ptr_not-a-key'}) == invalid
    assert call(url, 'GET', '/api/users/me', {'Authorization': 'Bearer not.a.jwt'}) == invalid
    token = jwt(url)
    httpd.sim.store.db['users'][0]['Id'] = 99                                           # the token's user is gone
    assert call(url, 'GET', '/api/users/me', {'Authorization': 'Bearer ' + token}) == (
        401, {'message': 'An authorization token is invalid', 'details': 'Unauthorized'})
    with pytest.raises(PortainerError) as err:
        PortainerClient(url, api_key='ptr_not-a-key').me()
    assert err.value.status == 401 and 'does not accept the API token' in str(err.value)


def test_login_burst_bans_the_address(double):
    url, httpd, _engine = double
    # The limiter's clock stands still while the test runs (no refill during the burst, no ban ending before the
    # checks on a slow machine) and is moved on by the test; it starts at the real clock's reading, so the bucket of
    # an address already seen is not emptied by a clock going back.
    limiter = httpd.sim.limiter
    assert limiter.ban == 1.0                                   # --sim-ratelimit-ban, from start_double(ban=1.0)
    now = [limiter.clock()]
    with limiter.lock:
        limiter.clock = lambda: now[0]
    token = jwt(url)                       # one of the 10 the bucket holds
    answers = [call(url, 'POST', '/api/auth', body={'Username': 'nobody', 'Password': 'x'})[0] for _attempt in range(12)]
    assert answers[:9] == [422] * 9 and 403 in answers          # rate_limiter.go: failed logins count too
    status, body = call(url, 'POST', '/api/auth', body={'Username': 'admin', 'Password': PASSWORD})
    assert (status, body) == (403, {'message': 'Access denied', 'details': 'Access denied to resource'})
    # the same limiter guards token creation (users/handler.go), not the other routes
    status, body = call(url, 'POST', '/api/users/1/tokens', {'Authorization': 'Bearer ' + token},
                        {'description': 'x', 'password': PASSWORD})
    assert status == 403 and body['message'] == 'Access denied'
    assert call(url, 'GET', '/api/users/me', {'Authorization': 'Bearer ' + token})[0] == 200
    with pytest.raises(PortainerError) as err:
        PortainerClient(url, username='admin', password=PASSWORD).me()
    assert err.value.status == 403 and BAN_HINT in str(err.value)
    assert 'api_key' in str(err.value) and 'token_file' in str(err.value)
    # the ban ends (an hour in Portainer, --sim-ratelimit-ban here): not a moment early, then at once
    now[0] += limiter.ban - 0.01
    assert call(url, 'POST', '/api/auth', body={'Username': 'admin', 'Password': PASSWORD})[0] == 403
    now[0] += 0.02
    assert call(url, 'POST', '/api/auth', body={'Username': 'admin', 'Password': PASSWORD})[0] == 200


def test_token_rules(double):
    url, _httpd, _engine = double
    key = api_key(url)
    status, body = call(url, 'POST', '/api/users/1/tokens', {'X-API-Key': key}, {'description': 'x',
                                                                                 'password': PASSWORD})
    assert (status, body['message']) == (401, 'Auth not supported')          # user_create_access_token.go
    # user_remove_access_token.go: a key that does not exist is a 500 "API Key not found"
    status, body = call(url, 'DELETE', '/api/users/1/tokens/42', {'X-API-Key': key})
    assert (status, body['message']) == (500, 'API Key not found')
    assert call(url, 'DELETE', '/api/users/7/tokens/1', {'X-API-Key': key})[0] == 404     # no user 7
    client = PortainerClient(url, api_key=key)
    second = PortainerClient(url, username='admin', password=PASSWORD).create_token(1, 'second', PASSWORD)
    assert client.delete_token(1, second['apiKey']['id']) is True
    assert client.delete_token(1, second['apiKey']['id']) is False          # already gone: not an error


def test_environment_creation_contacts_the_engine(double, tmp_path):
    url, _httpd, engine = double
    client = PortainerClient(url, username='admin', password=PASSWORD)
    with pytest.raises(PortainerError) as err:
        client.create_endpoint('nowhere', 1, url='unix://%s/none.sock' % tmp_path)
    assert err.value.status == 500 and err.value.reason == 'Unable to initiate communications with environment'
    assert client.endpoint_by_name('nowhere') is None
    assert client.create_endpoint('second', 1, url=engine.url)['Type'] == 1


def stack(stack_id, name, stype, endpoint_id, swarm_id=''):
    return {'Id': stack_id, 'Name': name, 'Type': stype, 'EndpointId': endpoint_id, 'SwarmId': swarm_id,
            'EntryPoint': 'docker-compose.yml', 'Env': None, 'Status': 1, 'ProjectPath': '/nonexistent'}


# (filters, ids) for the stacks below; Portainer's rules (stacks/stack_list.go filterStacks, and its
# stack_list_test.go cases): EndpointID selects compose stacks (type 2) of the environment, SwarmID selects Swarm
# stacks (type 1) of the cluster, IncludeOrphanedStacks adds stacks of removed environments of the matching type
# whose name is not taken.
FILTER_CASES = [
    (None, [1, 2, 3, 4, 5, 6]),
    ({}, [1, 2, 3, 4, 5, 6]),
    ({'EndpointID': 1}, [2]),                                   # the Swarm stack 1 of environment 1 is NOT listed
    ({'SwarmID': SWARM_ID}, [1, 5]),
    ({'EndpointID': 1, 'SwarmID': SWARM_ID}, [1, 2, 5]),
    ({'EndpointID': 1, 'IncludeOrphanedStacks': True}, [2, 4]),  # compose orphan 4; 6 has compose stack 2's name
    ({'SwarmID': SWARM_ID, 'IncludeOrphanedStacks': True}, [1, 5]),
    ({'SwarmID': 'other', 'IncludeOrphanedStacks': True}, [5]),
    ({'endpointid': 1}, [2]),                                   # Go matches JSON field names case-insensitively
]


@pytest.mark.parametrize('filters,ids', FILTER_CASES)
def test_stack_list_filters_like_portainer(double, filters, ids):
    url, httpd, _engine = double
    httpd.sim.store.db['stacks'][:] = [
        stack(1, 'swarmstack', 1, 1, SWARM_ID), stack(2, 'composestack', 2, 1), stack(3, 'elsewhere', 2, 2),
        stack(4, 'orphan', 2, 9), stack(5, 'orphanswarm', 1, 9, SWARM_ID), stack(6, 'composestack', 2, 9)]
    httpd.sim.store.db['endpoints'].append(dict(httpd.sim.store.db['endpoints'][0], Id=2, Name='two'))
    path = '/api/stacks' if filters is None else '/api/stacks?filters=' + urllib.request.quote(json.dumps(filters))
    status, body = call(url, 'GET', path, {'Authorization': 'Bearer ' + jwt(url)})
    assert status == 200 and sorted(s['Id'] for s in body) == ids


def test_client_finds_swarm_stacks_of_an_environment(double):
    url, httpd, _engine = double
    httpd.sim.store.db['stacks'][:] = [stack(1, 'pcheck-upper', 1, 1, SWARM_ID), stack(2, 'composestack', 2, 1),
                                       stack(3, 'pcheck-upper', 1, 2, SWARM_ID)]
    client = PortainerClient(url, api_key=api_key(url))
    assert sorted(s['Id'] for s in client.stacks(1)) == [1, 2]
    assert client.stack_by_name('PCheck-Upper', 1)['Id'] == 1     # the name as Portainer normalises it
    assert client.stack_by_name('PCheck-Upper', 2)['Id'] == 3
    assert client.stack_by_name('pcheck', 1) is None
    for bad in ('{"EndpointID": "1"}', '[1]', '{'):
        status, body = call(url, 'GET', '/api/stacks?filters=' + urllib.request.quote(bad),
                            {'X-API-Key': client.api_key})
        assert (status, body['message']) == (400, 'Invalid query parameter: filters')


def test_stack_answers_have_portainers_shapes(double):
    url, httpd, engine = double
    client = PortainerClient(url, api_key=api_key(url))
    created = client.request('POST', '/api/stacks/create/swarm/string', query={'endpointId': 1},
                             body={'name': 'Shapes', 'swarmID': SWARM_ID, 'stackFileContent': COMPOSE})
    assert created['Name'] == 'shapes' and created['Type'] == 1 and created['Env'] is None     # no env: null
    assert created['ResourceControl']['AdministratorsOnly'] is True and 'IsComposeFormat' not in created
    assert set(engine.stack_services('shapes')) == {'shapes_web'}
    updated = client.update_stack(created['Id'], 1, COMPOSE, [])
    assert updated['ResourceControl'] is None and updated['Env'] == []     # stack_update.go: not decorated
    with pytest.raises(PortainerError) as err:                              # endpointId is required on update
        client.request('PUT', '/api/stacks/%d' % created['Id'], body={'stackFileContent': COMPOSE})
    assert err.value.status == 400
    # stack_delete.go: without endpointId the stack counts as orphaned and environment 0 is not found
    with pytest.raises(PortainerError) as err:
        client.request('DELETE', '/api/stacks/%d' % created['Id'])
    assert err.value.status == 404 and 'Unable to find the endpoint' in err.value.reason
    assert engine.stack_services('shapes')
    client.delete_stack(created['Id'], 1)
    assert engine.stack_services('shapes') == {} and client.stacks() == []
    assert engine.cli_calls == [['stack', 'deploy', 'shapes'], ['stack', 'deploy', 'shapes'], ['stack', 'rm', 'shapes']]


def test_rate_limiter_refills_one_per_second():
    now = [0.0]
    limiter = RateLimiter(ban=60, clock=lambda: now[0])
    assert all(limiter.allow('a') for _attempt in range(10)) and not limiter.allow('a')
    assert limiter.allow('b')                                   # per address
    now[0] = 59.0
    assert not limiter.allow('a')                               # still banned, whatever the bucket holds
    now[0] = 60.5
    assert limiter.allow('a')                                   # ban over, bucket refilled meanwhile
    fresh = RateLimiter(ban=60, clock=lambda: now[0])
    for _second in range(30):                                       # one request a second never empties it
        now[0] += 1.0
        assert fresh.allow('c')


def test_network_faults_for_the_next_matching_requests(double):
    url, httpd, _engine = double
    assert call(url, 'POST', '/sim/faults', body={'fault': 'reset'})[0] == 400
    assert call(url, 'POST', '/sim/faults', body={'method': 'GET', 'path': '/api/system/.*', 'fault': '504',
                                                  'count': 2})[0] == 204
    assert call(url, 'POST', '/sim/faults', body={'method': 'GET', 'path': '/api/system/status',
                                                  'fault': 'drop'})[0] == 204
    assert [call(url, 'GET', '/api/system/status')[0] for _attempt in range(2)] == [504, 504]
    with pytest.raises(http.client.RemoteDisconnected):
        call(url, 'GET', '/api/system/status')
    assert call(url, 'GET', '/api/system/status')[0] == 200                  # every fault used up
    assert [r.get('fault') for r in httpd.sim.requests[-4:]] == ['504', '504', 'drop', None]
    # 503: refused before Portainer handles the request (nothing logged as carried out)
    call(url, 'POST', '/sim/faults', body={'method': 'POST', 'path': '/api/auth', 'fault': '503'})
    assert call(url, 'POST', '/api/auth', body={'Username': 'admin', 'Password': PASSWORD})[0] == 503
    call(url, 'POST', '/sim/faults', body={'method': 'POST', 'path': '/api/auth', 'fault': 'drop'})
    assert call(url, 'DELETE', '/sim/faults')[0] == 204 and httpd.sim.faults == []
