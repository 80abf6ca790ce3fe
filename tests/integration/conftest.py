# -*- coding: utf-8 -*-
"""Integration fixtures: a pvesim Proxmox API (or a real Proxmox when PHOENIX_PVE_URL is set)."""

import os

import pytest

from pve_env import REAL_PVE, REPO, ROOT_PASSWORD, TOKEN_ID, TOKEN_SECRET, Pve
from image_server import NOBLE, ImageServer, tiny_qcow2


@pytest.fixture(scope='session')
def image_server(tmp_path_factory):
    """A loopback HTTPS server for cloud images and OS templates (pvesim trusts its CA for downloads)."""
    server = ImageServer(tmp_path_factory.mktemp('images'), {NOBLE: tiny_qcow2()})
    yield server
    server.stop()


@pytest.fixture(scope='module')
def pve(tmp_path_factory, image_server):
    if REAL_PVE:
        yield Pve(os.environ['PHOENIX_PVE_URL'], os.environ.get('PHOENIX_PVE_CA_FILE'),
                  os.environ['PHOENIX_PVE_TOKEN_ID'], os.environ['PHOENIX_PVE_TOKEN_SECRET'],
                  password=os.environ.get('PHOENIX_PVE_PASSWORD'), user=os.environ.get('PHOENIX_PVE_USER', 'root@pam'))
        return
    from pvesim.control import Control
    from pvesim.server import start_server
    state = tmp_path_factory.mktemp('pvesim')
    server = start_server(state, tokens=['%s=%s' % (TOKEN_ID, TOKEN_SECRET)], passwords=['root@pam:' + ROOT_PASSWORD],
                          control=True, task_seconds=0.05, strict=True, download_ca=image_server.ca_file)
    try:
        control = Control(server.url, ca_file=str(server.ca_file))
        yield Pve(server.url, str(server.ca_file), TOKEN_ID, TOKEN_SECRET, control=control, state_dir=str(state),
                  server=server, password=ROOT_PASSWORD, images=image_server)
    finally:
        server.stop()


@pytest.fixture(scope='module')
def topology():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    return load_config(os.path.join(REPO, 'etc'), os.path.join(REPO, 'stacks'))


# modules whose tests run in order on one module-scoped pvesim (a test builds on the one before: test_cluster moves a
# guest behind the collection's back, then migrates it back): pytest-xdist must give all of such a module's tests to
# one worker; every other test is spread one by one as with --dist load
IN_ORDER = ('tests/integration/test_cluster.py',)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class InOrderModules(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split('::', 1)[0]
            return path if path.endswith(IN_ORDER) else nodeid

    if config.getvalue('dist') == 'load':
        return InOrderModules(config, log)
    return None
