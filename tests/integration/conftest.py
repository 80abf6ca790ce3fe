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


# Every module's tests share one module-scoped pvesim, and several modules build on earlier tests (test_cluster moves
# a guest by hand, then migrates it back; test_create_playbook creates guest 801, destroys it, then makes it by hand):
# pytest-xdist gives all of a module's tests to one worker, in order (its --dist loadscope), with modules spread
# over the workers.
def pytest_configure(config):
    config.addinivalue_line('markers', 'walkthrough: a whole-platform playbook walkthrough (a minute or more each); '
                            '`make check` leaves these to `make test`')


# The walkthroughs go first: with whole modules per worker, a long module collected last would run alone at the end.
# (A stable sort keeps each module's own order; every worker collects, and so sorts, the same way.)
def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker('walkthrough') is None)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    if config.getvalue('dist') == 'load':
        return LoadScopeScheduling(config, log)
    return None
