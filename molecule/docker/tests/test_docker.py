# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the docker role on the molecule instance (testinfra)."""

import json
import os
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from phoenix_testinfra import assert_no_service_errors, wait_for  # noqa: E402

with open(os.path.join(os.path.dirname(HERE), 'vars', 'docker.yml')) as handle:
    VARS = yaml.safe_load(handle)


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """The handler restarted dockerd: the tests start once it answers again."""
    wait_for(lambda: host.run('docker info --format "{{.ServerVersion}}"'), lambda result: result.rc == 0,
             'dockerd answering after the restart')


def test_service_enabled_and_running(host):
    service = host.service('docker')
    assert service.is_running
    assert service.is_enabled


def test_daemon_json_is_the_rendered_config(host):
    daemon = host.file('/etc/docker/daemon.json')
    assert daemon.user == 'root'
    assert daemon.mode == 0o644
    assert json.loads(daemon.content_string) == {
        'features': {'buildkit': True},
        'live-restore': False,
        'log-driver': 'json-file',
        'log-opts': {'max-file': '5', 'max-size': '20m'},
        'default-address-pools': [{'base': '10.240.0.0/16', 'size': 24}],
        'metrics-addr': '127.0.0.1:9323',
    }


def test_running_engine_uses_the_config(host):
    """The handler restarted dockerd: the values docker info reports are the rendered ones, not the image's."""
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info['LoggingDriver'] == 'json-file'
    assert info['LiveRestoreEnabled'] is False
    started = int(host.check_output('systemctl show -p ActiveEnterTimestampMonotonic --value docker.service'))
    changed = int(host.check_output("stat -c %Y /etc/docker/daemon.json"))
    # systemd's start time is on CLOCK_MONOTONIC: turned into wall-clock time with the two clocks read in one process
    # (not /proc/uptime, which also counts time suspended, and `date`, read by another command later)
    offset = float(host.check_output("python3 -c 'import time; print(time.time() - time.monotonic())'"))
    # dockerd was (re)started after daemon.json was written: its start is no earlier than the file's mtime
    assert started / 1e6 + offset >= changed - 1, (started, offset, changed)


def test_metrics_endpoint(host):
    wait_for(lambda: host.run('curl -sf http://127.0.0.1:9323/metrics'),
             lambda result: result.rc == 0 and 'engine_daemon_engine_info' in result.stdout,
             'engine_daemon_engine_info on the metrics endpoint')


def test_default_address_pool_applies_to_new_networks(host):
    host.run('docker network rm molecule-pool-check')
    host.check_output('docker network create molecule-pool-check')
    try:
        subnet = host.check_output(
            "docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' molecule-pool-check")
        assert subnet.startswith('10.240.') and subnet.endswith('/24')
    finally:
        host.run('docker network rm molecule-pool-check')


def test_user_in_docker_group(host):
    assert 'docker' in host.user(VARS['phoenix_guest']['user_config']['username']).groups


def test_no_errors_logged(host):
    # dockerd only: containerd's CRI plugin (Kubernetes, unused here) logs that it has no CNI config on every start.
    assert_no_service_errors(host, ['docker'])
