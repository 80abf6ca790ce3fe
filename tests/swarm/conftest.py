# -*- coding: utf-8 -*-
"""Fixtures for the stack tests: one real 2-node Swarm (docker-in-docker) per session, with the Portainer API
test double on its manager, or a real Portainer when PHOENIX_PORTAINER_URL is set."""

import os
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'unit'))

import swarm_lab  # noqa: E402
from modrun import run_module  # noqa: E402

REAL_URL = os.environ.get('PHOENIX_PORTAINER_URL')


class Target:
    """Where the Portainer tests point: connection options for the modules and Docker reads through the proxy."""

    def __init__(self, url, conn, lab=None):
        self.url = url
        self.conn = conn
        self.lab = lab
        self.endpoint = os.environ.get('PHOENIX_PORTAINER_ENDPOINT', 'primary')

    @property
    def simulated(self):
        return self.lab is not None

    def module(self, name, args, check=False):
        full = dict(self.conn)
        full.update(args)
        return run_module(name, full, check=check)

    def client(self):
        from ansible_collections.thinkheads.phoenix.plugins.module_utils.portainer import PortainerClient
        return PortainerClient(**dict((k, v) for k, v in self.conn.items()))

    def docker_get(self, path, query=None):
        client = self.client()
        eid = client.resolve_endpoint(self.endpoint)
        return client.docker(eid, 'GET', path, query=query)

    def services(self, stack):
        import json
        label = 'com.docker.stack.namespace=%s' % stack
        found = self.docker_get('/services', {'filters': json.dumps({'label': [label]})}) or []
        return dict((s['Spec']['Name'], s) for s in found)

    def writes(self):
        """Requests that change something, from the test double's request log (None against a real Portainer)."""
        if not self.simulated:
            return None
        return [r for r in self.lab.sim_requests() if r['method'] in ('POST', 'PUT', 'DELETE')]

    def clear_log(self):
        if self.simulated:
            self.lab.sim_requests(clear=True)


@pytest.fixture(scope='session')
def swarm(tmp_path_factory):
    if REAL_URL:
        swarm_lab.require('PHOENIX_PORTAINER_URL is set: no local swarm')
    why = swarm_lab.missing()
    if why:
        swarm_lab.require(why)
    lab = swarm_lab.Swarm(str(tmp_path_factory.mktemp('phx-swarm')))
    started = time.time()
    try:
        lab.up()
        lab.start_sim()
        lab.timings['ready'] = time.time() - started
        sys.stderr.write('\nphx-swarm lab ready: %s\n' % lab.timings)
        yield lab
    finally:
        if not os.environ.get('PHX_SWARM_KEEP'):
            lab.down()


@pytest.fixture(scope='session')
def portainer(request, tmp_path_factory):
    """The Portainer under test, bootstrapped (admin, API token, local environment)."""
    if REAL_URL:
        conn = {'url': REAL_URL, 'validate_certs': os.environ.get('PHOENIX_PORTAINER_VALIDATE_CERTS', 'true')
                in ('1', 'true', 'yes')}
        for key, env in (('api_key', 'PHOENIX_PORTAINER_API_KEY'), ('username', 'PHOENIX_PORTAINER_USERNAME'),
                         ('password', 'PHOENIX_PORTAINER_PASSWORD'), ('ca_path', 'PHOENIX_PORTAINER_CA_PATH')):
            if os.environ.get(env):
                conn[key] = os.environ[env]
        return Target(REAL_URL, conn)
    lab = request.getfixturevalue('swarm')
    token_file = str(tmp_path_factory.mktemp('phx-swarm-token') / 'portainer.token')
    boot = run_module('portainer_bootstrap', {'url': lab.url, 'password': swarm_lab.ADMIN_PASSWORD,
                                              'ca_path': lab.ca, 'token_file': token_file,
                                              'endpoints': [{'name': 'primary', 'type': 'local'}]})
    assert not boot.get('failed'), boot
    with open(token_file) as handle:
        key = handle.read().strip()
    target = Target(lab.url, {'url': lab.url, 'api_key': key, 'ca_path': lab.ca}, lab)
    target.bootstrap = boot
    target.token_file = token_file
    return target
