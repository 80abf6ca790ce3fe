# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the docker and swarm roles on the two molecule instances (testinfra)."""

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.dirname(HERE)
sys.path.insert(0, os.path.dirname(SCENARIO))

from phoenix_testinfra import assert_no_service_errors, wait_for  # noqa: E402
with open(os.path.join(SCENARIO, 'vars', 'swarm.yml')) as handle:
    VARS = yaml.safe_load(handle)
MANAGER = VARS['molecule_guests']['swarm_managers']
WORKER = VARS['molecule_guests']['swarm_workers']
NETWORK = 'phoenix-routed'


def is_manager(host):
    return host.check_output('hostname') == MANAGER['name']


def nodes(host):
    """Every node as `docker node inspect` shows it, by hostname (run on the manager)."""
    ids = host.check_output("docker node ls -q").split()
    return {node['Description']['Hostname']: node
            for node in json.loads(host.check_output('docker node inspect ' + ' '.join(ids)))}


def test_dockerd_active_with_rendered_config(host):
    assert host.service('docker').is_running
    config = json.loads(host.file('/etc/docker/daemon.json').content_string)
    assert config['live-restore'] is False
    assert config['log-opts'] == {'max-file': '3', 'max-size': '10m'}


def test_swarm_membership(host):
    info = json.loads(host.check_output("docker info --format '{{json .Swarm}}'"))
    assert info['LocalNodeState'] == 'active'
    guest = MANAGER if is_manager(host) else WORKER
    assert info['NodeAddr'] == guest['network']['ip']
    assert info['ControlAvailable'] is is_manager(host)
    assert [m['Addr'] for m in info['RemoteManagers']] == [MANAGER['network']['ip'] + ':2377']


def both_ready(seen):
    return sorted(seen) == ['swarm-manager', 'swarm-worker'] and all(
        node['Status']['State'] == 'ready' for node in seen.values())


def states(host):
    """Node states by hostname, for the message of a wait that gives up."""
    return host.check_output("docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'")


def wait_nodes_ready(host, what):
    """A node reports Ready to the manager a heartbeat after it joined: wait for both, with their states."""
    wait_for(lambda: (states(host), both_ready(nodes(host))), lambda seen: seen[1], what)
    return nodes(host)


def test_nodes_ready_with_roles_and_labels(host):
    if not is_manager(host):
        pytest.skip('node list is read on the manager')
    seen = wait_nodes_ready(host, 'both nodes ready after converge')
    for guest in (MANAGER, WORKER):
        node = seen[guest['name']]
        assert node['Spec']['Availability'] == 'active'
        assert node['Spec']['Role'] == guest['swarm_role']
        assert node['Spec']['Labels'] == {
            'phoenix.role': guest['swarm_role'],
            'phoenix.vmid': str(guest['id']),
            'phoenix.name': guest['name'],
            'org.thinkheads.molecule': 'swarm',
        }


def test_routed_network_is_attachable_overlay(host):
    if not is_manager(host):
        pytest.skip('swarm-scoped networks are listed on managers')
    net = json.loads(host.check_output('docker network inspect ' + NETWORK))[0]
    assert net['Driver'] == 'overlay'
    assert net['Scope'] == 'swarm'
    assert net['Attachable'] is True
    assert net['IPAM']['Config'][0]['Subnet'] == VARS['swarm_routed_network_subnet']
    assert 'encrypted' not in (net['Options'] or {})


def test_plain_container_attaches_on_the_worker(host):
    """A standalone container on the worker joins the overlay (only possible when it is attachable)."""
    if is_manager(host):
        pytest.skip('attached from the worker')
    # A two-file image: no registry is reachable, so it is made from the VM's own sleep and libc.
    host.check_output('tar -chf - -C / usr/bin/sleep usr/lib/x86_64-linux-gnu/libc.so.6 lib64/ld-linux-x86-64.so.2'
                      ' | docker import - molecule/tiny:latest')
    host.run('docker rm -f molecule-attach')
    try:
        host.check_output('docker run -d --name molecule-attach --network %s molecule/tiny:latest /usr/bin/sleep 300'
                          % NETWORK)
        ip = host.check_output("docker inspect -f '{{(index .NetworkSettings.Networks \"%s\").IPAddress}}' "
                               "molecule-attach" % NETWORK)
        assert ip.startswith(VARS['swarm_routed_network_subnet'].rsplit('.', 1)[0] + '.')
    finally:
        host.run('docker rm -f molecule-attach')


def run_playbook(*args):
    env = dict(os.environ)
    return subprocess.run(['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE']] + list(args),
                          env=env, capture_output=True, text=True, check=False)


# When failures.yml started: the worker leaves and rejoins on purpose from then on (dockerd logs errors for that).
INJECTED = {}


@pytest.fixture(scope='module')
def failures():
    out = os.path.join(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'], 'failures.json')
    if os.path.exists(out):
        os.remove(out)
    INJECTED['since'] = int(time.time()) - 1
    run = run_playbook(os.path.join(SCENARIO, 'failures.yml'))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    with open(out) as handle:
        return json.load(handle)


def test_node_of_another_swarm_is_refused_then_rejoined(host, failures):
    if not is_manager(host):
        pytest.skip('checked once')
    message = failures['other_swarm']
    assert 'is a member of another swarm' in message
    assert 'docker swarm leave' in message
    assert failures['still_own_swarm'] == 'true'
    # rejoined by the role after leaving: the swarm is whole again, with the worker's labels
    seen = wait_nodes_ready(host, 'the worker ready again after it rejoined')
    assert seen['swarm-worker']['Spec']['Labels']['phoenix.role'] == 'worker'


def test_check_mode_reports_no_change(host):
    if not is_manager(host):
        pytest.skip('run once for both nodes')
    run = run_playbook('--check', os.path.join(SCENARIO, 'converge.yml'))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    recap = run.stdout[run.stdout.rindex('PLAY RECAP'):]
    assert recap.count('changed=0') == 2 and 'failed=1' not in recap, recap


def test_no_errors_logged(host):
    """Converge, idempotence and the checks above, up to failures.yml (testinfra runs every test per host in turn, so
    the worker's turn comes after the manager's has run it)."""
    # dockerd only: containerd's CRI plugin (Kubernetes, unused here) logs that it has no CNI config on every start.
    assert_no_service_errors(host, ['docker'], until=INJECTED.get('since'), allowed=[
        # The role asks a fresh node for its swarm (GET /swarm) before init or join: dockerd logs the 503.
        r'(Error getting swarm|GET /v[0-9.]+/swarm returned error): This node is not a swarm manager',
    ])
