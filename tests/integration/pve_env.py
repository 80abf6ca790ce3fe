# -*- coding: utf-8 -*-
"""Where the integration tests find Proxmox: pvesim by default, a real Proxmox when PHOENIX_PVE_URL is set."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))     # phoenix_testlib and modrun
sys.path.insert(0, os.path.join(REPO, 'lab', 'pvesim'))
sys.path.insert(0, os.path.join(REPO, 'collections'))

TOKEN_ID = 'root@pam!phoenix'
TOKEN_SECRET = '6d2f8a4e-1c1b-4f33-9d0e-phoenix-tests'
# root@pam's own login: only root@pam itself (not its tokens) may set bind mounts, dev[n] and features beyond
# nesting (the reference guests have them), so the modules log in with it; tokens are for the tests that say so.
ROOT_PASSWORD = 'phoenix-tests-root-pw'
REAL_PVE = bool(os.environ.get('PHOENIX_PVE_URL'))


class Pve:
    """Connection settings for the modules, plus the simulator's control interface when it is pvesim."""

    def __init__(self, url, ca_file, token_id, token_secret, control=None, state_dir=None, server=None,
                 password=None, user='root@pam', images=None):
        self.url = url
        self.ca_file = ca_file
        self.token_id = token_id
        self.token_secret = token_secret
        self.password = password
        self.user = user
        self.control = control
        self.state_dir = state_dir
        self.server = server
        self.images = images        # image_server.ImageServer (pvesim only)
        self._client = None

    @property
    def env(self):
        """What the modules connect with: root@pam's password when there is one, else the API token."""
        if not self.password:
            return self.token_env
        env = {'PHOENIX_PVE_URL': self.url, 'PHOENIX_PVE_USER': self.user, 'PHOENIX_PVE_PASSWORD': self.password}
        if self.ca_file:
            env['PHOENIX_PVE_CA_FILE'] = self.ca_file
        return env

    @property
    def token_env(self):
        env = {'PHOENIX_PVE_URL': self.url, 'PHOENIX_PVE_TOKEN_ID': self.token_id,
               'PHOENIX_PVE_TOKEN_SECRET': self.token_secret}
        if self.ca_file:
            env['PHOENIX_PVE_CA_FILE'] = self.ca_file
        return env

    @property
    def login_calls(self):
        """API calls a module run spends on logging in (the ticket request of a password login)."""
        return 1 if self.password else 0

    def writes(self):
        """Write requests pvesim logged since the last clear (a real Proxmox keeps no such log: [])."""
        if self.control is None:
            return []
        return [r for r in self.control.requests() if r['method'] != 'GET' and r['path'] != '/access/ticket']

    def requests(self):
        return self.control.requests() if self.control is not None else []

    def api_get(self, path, **params):
        """GET through the collection's client (root@pam's password, else the token); pvesim logs it like any GET."""
        if self._client is None:
            from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveClient
            auth = dict(api_password=self.password) if self.password else dict(
                api_token_id=self.token_id, api_token_secret=self.token_secret)
            self._client = PveClient(self.url, api_user=self.user, ca_file=self.ca_file, **auth)
        return self._client.get(path.lstrip('/'), **params)

    def image_vars(self, *names):
        """ansible-playbook arguments giving phoenix_images for ``names`` from the loopback image server."""
        import json
        return ['-e', json.dumps({'phoenix_images': dict((n, self.images.source(n)) for n in names)})]

    def clear_log(self):
        if self.control is not None:
            self.control.clear_requests()
