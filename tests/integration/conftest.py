# -*- coding: utf-8 -*-
"""Integration fixtures: a pvesim Proxmox API (or a real Proxmox when PHOENIX_PVE_URL is set)."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))     # conftest helpers and modrun
sys.path.insert(0, os.path.join(REPO, 'lab', 'pvesim'))
sys.path.insert(0, os.path.join(REPO, 'collections'))

TOKEN_ID = 'root@pam!phoenix'
TOKEN_SECRET = '6d2f8a4e-1c1b-4f33-9d0e-phoenix-tests'
REAL_PVE = bool(os.environ.get('PHOENIX_PVE_URL'))


class Pve:
    """Connection settings for the modules, plus the simulator's control interface when it is pvesim."""

    def __init__(self, url, ca_file, token_id, token_secret, control=None, state_dir=None, server=None):
        self.url = url
        self.ca_file = ca_file
        self.token_id = token_id
        self.token_secret = token_secret
        self.control = control
        self.state_dir = state_dir
        self.server = server

    @property
    def env(self):
        env = {'PHOENIX_PVE_URL': self.url, 'PHOENIX_PVE_TOKEN_ID': self.token_id,
               'PHOENIX_PVE_TOKEN_SECRET': self.token_secret}
        if self.ca_file:
            env['PHOENIX_PVE_CA_FILE'] = self.ca_file
        return env

    def writes(self):
        """Write requests pvesim logged since the last clear."""
        return [r for r in self.control.requests() if r['method'] != 'GET']

    def clear_log(self):
        self.control.clear_requests()


@pytest.fixture(scope='module')
def pve(tmp_path_factory):
    if REAL_PVE:
        yield Pve(os.environ['PHOENIX_PVE_URL'], os.environ.get('PHOENIX_PVE_CA_FILE'),
                  os.environ['PHOENIX_PVE_TOKEN_ID'], os.environ['PHOENIX_PVE_TOKEN_SECRET'])
        return
    from pvesim.control import Control
    from pvesim.server import start_server
    state = tmp_path_factory.mktemp('pvesim')
    server = start_server(state, tokens=['%s=%s' % (TOKEN_ID, TOKEN_SECRET)], control=True, task_seconds=0.05,
                          strict=True)
    try:
        yield Pve(server.url, str(server.ca_file), TOKEN_ID, TOKEN_SECRET, control=Control(server.url,
                                                                                             ca_file=str(server.ca_file)),
                  state_dir=str(state), server=server)
    finally:
        server.stop()


@pytest.fixture(scope='module')
def topology():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    return load_config(os.path.join(REPO, 'etc'), os.path.join(REPO, 'stacks'))
