# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the docker role on the molecule instance (testinfra)."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO = os.path.dirname(HERE)
sys.path.insert(0, os.path.dirname(SCENARIO))

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


DAEMON_JSON = '/etc/docker/daemon.json'
USER = VARS['phoenix_guest']['user_config']['username']
# Debian 12's dockerd (20.10) has no --validate: for these tests a dockerd found first on PATH claims it (its --help
# names the option) and records each --validate call; it refuses a configuration whose log-level is not a real one.
# The service itself runs /usr/sbin/dockerd (the unit names the absolute path), untouched.
VALIDATE_LOG = '/tmp/molecule-dockerd-validate.log'
FAKE_DOCKERD = """#!/bin/sh
case "$1" in
  --help) /usr/sbin/dockerd --help; echo '      --validate    Validate daemon configuration and exit' ;;
  --validate) echo "$*" >> %s
    python3 -c 'import json, sys; level = json.load(open(sys.argv[1])).get("log-level", "info")
sys.exit(0 if level in ("debug", "info", "warn", "error", "fatal") else "invalid log level: " + level)' "$3" ;;
  *) exec /usr/sbin/dockerd "$@" ;;
esac
""" % VALIDATE_LOG


def converge(*options, expect_rc=0):
    """ansible-playbook converge.yml with ``options`` against the instance; its stdout and stderr."""
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook', *options, '-i', env['MOLECULE_INVENTORY_FILE'],
                          os.path.join(SCENARIO, 'converge.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == expect_rc, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout + run.stderr


@pytest.fixture
def validating_dockerd(host):
    host.check_output('rm -f %s' % VALIDATE_LOG)
    host.check_output("cat > /usr/local/sbin/dockerd <<'EOF'\n%sEOF\nchmod 0755 /usr/local/sbin/dockerd" % FAKE_DOCKERD)
    yield
    host.check_output('rm -f /usr/local/sbin/dockerd %s' % VALIDATE_LOG)


def engine_pid(host):
    return host.check_output('systemctl show -p MainPID --value docker.service')


def test_drift_is_found_and_repaired(host, validating_dockerd):
    """A changed byte, owner and mode of daemon.json, the directory's mode and the user's docker group: check mode
    shows them and writes nothing; a real run validates the new file, puts everything back and restarts dockerd."""
    wanted = host.file(DAEMON_JSON).sha256sum
    host.check_output("sed -i 's/20m/30m/' %s && chown nobody %s && chmod 0600 %s && chmod 0700 /etc/docker"
                      " && gpasswd -d %s docker" % (DAEMON_JSON, DAEMON_JSON, DAEMON_JSON, USER))
    drifted = host.file(DAEMON_JSON).sha256sum
    assert drifted != wanted
    pid = engine_pid(host)
    out = converge('--check', '--diff')
    assert '-    "max-size": "30m"' in out and '+    "max-size": "20m"' in out, out[-4000:]
    assert host.file(DAEMON_JSON).sha256sum == drifted
    assert (host.file(DAEMON_JSON).user, host.file(DAEMON_JSON).mode) == ('nobody', 0o600)
    assert host.file('/etc/docker').mode == 0o700
    assert 'docker' not in host.user(USER).groups
    assert not host.file(VALIDATE_LOG).exists, 'check mode ran the validation'
    assert engine_pid(host) == pid
    out = converge()
    assert 'RUNNING HANDLER [thinkheads.phoenix.docker : Restart Docker]' in out, out[-4000:]
    daemon = host.file(DAEMON_JSON)
    assert (daemon.sha256sum, daemon.user, daemon.group, daemon.mode) == (wanted, 'root', 'root', 0o644)
    assert host.file('/etc/docker').mode == 0o755
    assert 'docker' in host.user(USER).groups
    calls = host.file(VALIDATE_LOG).content_string.splitlines()
    assert len(calls) == 1 and calls[0].startswith('--validate --config-file /etc/docker/'), calls
    wait_for(lambda: host.run('docker info --format "{{.ServerVersion}}"'), lambda result: result.rc == 0,
             'dockerd answering after the restart')
    assert engine_pid(host) != pid
    # and the next run changes nothing
    out = converge()
    recap = out[out.rindex('PLAY RECAP'):].split('\n\n')[0]
    assert re.search(r'changed=0\b', recap) and not re.search(r'changed=[1-9]', recap), recap


def test_an_invalid_configuration_never_replaces_the_file(host, validating_dockerd):
    before = host.file(DAEMON_JSON).sha256sum
    listing = host.check_output('ls -A /etc/docker')
    pid = engine_pid(host)
    out = converge('-e', json.dumps({'docker_daemon_extra': {'log-level': 'chatty'}}), expect_rc=2)
    text = ' '.join(out.split())  # the failure's message, whatever the callback's line breaks
    assert 'failed its validation' in text and 'invalid log level: chatty' in text, out[-3000:]
    assert host.file(DAEMON_JSON).sha256sum == before
    assert engine_pid(host) == pid
    assert host.check_output('ls -A /etc/docker') == listing, 'a temporary file was left'


def test_no_errors_logged(host):
    # dockerd only: containerd's CRI plugin (Kubernetes, unused here) logs that it has no CNI config on every start.
    assert_no_service_errors(host, ['docker'])
