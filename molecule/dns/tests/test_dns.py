# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the dns role on the molecule instance (testinfra): records from the fixture configs, asked with dig."""

import os
import re
import subprocess
import sys

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(SCENARIO))

from phoenix_testinfra import assert_no_service_errors, wait_equal  # noqa: E402

EXPECTED = {
    'nginx-gateway.lab.test': '10.99.0.153',
    'traefik.lab.test': '10.99.0.12',
    'step-ca.lab.test': '10.99.0.10',
    'swarm-manager.lab.test': '10.99.0.111',
    'swarm-worker.lab.test': '10.99.0.102',
    # routed host names point at the gateway, even a guest's own name that it publishes
    'qdrant.lab.test': '10.99.0.153',
    'granite-embedding.lab.test': '10.99.0.153',
    # the CA's name points at the CA; a guest's own dns_records
    'ca.lab.test': '10.99.0.10',
    'acme.lab.test': '10.99.0.10',
}


def dig(host, *args):
    return host.check_output('dig @127.0.0.1 +short +time=2 +tries=2 %s' % ' '.join(args)).strip()


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """Converge (re)started dnsmasq: the tests start once it answers with the generated records."""
    wait_equal(lambda: dig(host, 'nginx-gateway.lab.test', 'A'), EXPECTED['nginx-gateway.lab.test'],
               'dnsmasq answering after converge')


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_record(host, name):
    assert dig(host, name, 'A') == EXPECTED[name]


def test_unknown_name_in_the_domain_is_nxdomain(host):
    out = host.check_output('dig @127.0.0.1 +time=2 +tries=2 nothing.lab.test A')
    assert 'status: NXDOMAIN' in out
    assert 'status: NXDOMAIN' in host.check_output('dig @127.0.0.1 +time=2 nothing.other.test A')


def test_templates_get_no_record(host):
    assert dig(host, 'template-base.lab.test') == ''


def test_reverse_lookup_is_the_guest_name(host):
    assert dig(host, '-x', '10.99.0.153') == 'nginx-gateway.lab.test.'
    assert dig(host, '-x', '10.99.0.10') == 'step-ca.lab.test.'


def test_only_loopback_and_no_upstream(host):
    conf = host.file('/etc/dnsmasq.d/phoenix.conf').content_string
    assert 'listen-address=127.0.0.1' in conf and 'no-resolv' in conf and 'server=' not in conf
    assert host.service('dnsmasq').is_running and host.service('dnsmasq').is_enabled


def test_new_record_after_reload_without_restart(host):
    pid = host.check_output('systemctl show -p MainPID --value dnsmasq.service')
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE'],
                          os.path.join(SCENARIO, 'more_records.yml')], env=env, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert 'RUNNING HANDLER [thinkheads.phoenix.dns : Reload dnsmasq]' in run.stdout
    assert 'RUNNING HANDLER [thinkheads.phoenix.dns : Restart dnsmasq]' not in run.stdout
    # The reload is a SIGHUP: dnsmasq re-reads the records after systemctl has returned.
    wait_equal(lambda: dig(host, 'extra.lab.test'), '10.99.0.77', 'the new record after the reload')
    assert host.check_output('systemctl show -p MainPID --value dnsmasq.service') == pid


def playbook(name, *extra):
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE'], *extra,
                          os.path.join(SCENARIO, name)], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.stdout


def test_drift_is_found_and_repaired(host):
    hosts, conf = '/etc/phoenix-dns/hosts', '/etc/dnsmasq.d/phoenix.conf'
    wanted = {path: host.file(path).sha256sum for path in (hosts, conf)}
    host.check_output("echo '10.99.0.99 stray' >> %s && chown nobody %s && chmod 0600 %s" % (hosts, hosts, conf))
    drifted = host.file(hosts).sha256sum
    # check mode reports both files and writes nothing
    out = playbook('more_records.yml', '--check', '--diff')
    assert '-10.99.0.99 stray' in out
    assert host.file(hosts).sha256sum == drifted and host.file(conf).mode == 0o600
    # a real run puts back the content, owner and mode, and reloads (records) and restarts (configuration)
    out = playbook('more_records.yml')
    assert 'RUNNING HANDLER [thinkheads.phoenix.dns : Reload dnsmasq]' in out
    assert 'RUNNING HANDLER [thinkheads.phoenix.dns : Restart dnsmasq]' in out
    for path in (hosts, conf):
        assert host.file(path).sha256sum == wanted[path]
        assert (host.file(path).user, host.file(path).group, host.file(path).mode) == ('root', 'root', 0o644)
    wait_equal(lambda: dig(host, 'extra.lab.test'), '10.99.0.77', 'dnsmasq answering after the restart')


def test_rejected_configuration_never_replaces_the_running_one(host):
    conf = '/etc/dnsmasq.d/phoenix.conf'
    before = host.file(conf).sha256sum
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    run = subprocess.run(['ansible-playbook', '-i', env['MOLECULE_INVENTORY_FILE'], '-e',
                          '{"dns_upstream_servers": ["999.0.0.1"]}', os.path.join(SCENARIO, 'more_records.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode != 0, run.stdout[-4000:]
    # the failure is reported on stderr, its message possibly wrapped
    out = ' '.join(re.sub(r'\x1b\[[0-9;]*m', '', run.stdout + run.stderr).split())
    assert 'failed its validation (dnsmasq --test' in out, out[-4000:]
    assert host.file(conf).sha256sum == before
    assert 'server=' not in host.file(conf).content_string
    assert dig(host, 'extra.lab.test') == '10.99.0.77'


def test_no_errors_logged(host):
    assert_no_service_errors(host, ['dnsmasq'])
