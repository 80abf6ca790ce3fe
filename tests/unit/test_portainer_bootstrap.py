# -*- coding: utf-8 -*-
"""portainer_bootstrap through ansible, against the Portainer API test double in process (no Docker needed):
admin init on a fresh instance and safe repeat, token created once then reused from its 0600 file, environments
registered by name, check mode without writes, a clear error on bad input before any request."""

import os
import stat

import pytest

from fake_docker import FakeEngine
from modrun import run_module
from test_portainer_client import PASSWORD, start


@pytest.fixture
def fresh(tmp_path):
    httpd, url, _cert = start(tmp_path, admin=False)
    engine = FakeEngine()
    httpd.engine = engine
    yield url, httpd, tmp_path
    httpd.shutdown()
    engine.close()


def writes(httpd):
    return [(r['method'], r['path']) for r in httpd.sim.requests if r['method'] != 'GET']


def test_bootstrap_fresh_then_idempotent(fresh):
    url, httpd, tmp_path = fresh
    token_file = str(tmp_path / 'out' / 'portainer.token')
    args = {'url': url, 'password': PASSWORD, 'token_file': token_file,
            'endpoints': [{'name': 'primary', 'type': 'local'}, {'name': 'docker2', 'type': 'local',
                                                                 'url': httpd.engine.url}]}
    checked = run_module('portainer_bootstrap', args, check=True)
    assert checked['changed'] and checked['admin_created'] and not checked.get('failed')
    assert writes(httpd) == [] and not os.path.exists(token_file)
    first = run_module('portainer_bootstrap', args)
    assert first['changed'] and first['admin_created'] and first['token_created'], first
    assert first['endpoints']['docker2'] == 2 and first['endpoints']['primary'] == 1
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    with open(token_file) as handle:
        assert handle.read().strip() == first['api_key'] and first['api_key'].startswith('ptr_')
    del httpd.sim.requests[:]
    again = run_module('portainer_bootstrap', args)
    assert again['changed'] is False and again['token_created'] is False and again['admin_created'] is False
    assert writes(httpd) == []
    rotated = run_module('portainer_bootstrap', dict(args, rotate_token=True))
    assert rotated['changed'] and rotated['token_created'] and rotated['api_key'] != first['api_key']
    assert len(httpd.sim.store.db['tokens']) == 1          # the older token with the same description is gone


def test_bad_input_and_wrong_password(fresh):
    url, httpd, _tmp = fresh
    bad = run_module('portainer_bootstrap', {'url': url, 'password': PASSWORD, 'endpoints': [{'name': 'a',
                                                                                              'type': 'agent'}]})
    assert bad['failed'] and 'needs a url' in bad['msg'] and httpd.sim.requests == []
    run_module('portainer_bootstrap', {'url': url, 'password': PASSWORD})
    wrong = run_module('portainer_bootstrap', {'url': url, 'password': 'not-the-password-at-all'})
    assert wrong['failed'] and 'Invalid credentials' in wrong['msg']
