# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify the step_ca, trusted_ca and step_certificates roles on the molecule instance (testinfra).

A real step-ca (built from source) runs on the instance; nothing here is a test double.
"""

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

from phoenix_testinfra import assert_no_service_errors, wait_equal, wait_for  # noqa: E402

with open(os.path.join(SCENARIO, 'vars', 'main.yml')) as handle:
    VARS = yaml.safe_load(handle)

ROOT = '/etc/step-ca/certs/root_ca.crt'
CA = 'https://ca.phoenix.test:9000'
WEB = VARS['step_certificates_list'][0]
SVC = VARS['step_certificates_list'][1]
WEB_URL = 'https://web.phoenix.test:%d/' % VARS['molecule_web_port']
MARKER = VARS['molecule_hook_marker']


def serial_of(host, path):
    return host.check_output('openssl x509 -noout -serial -in %s' % path).split('=', 1)[1]


def served_serial(host):
    out = host.run('echo | openssl s_client -connect 127.0.0.1:%d -servername web.phoenix.test 2>/dev/null'
                   ' | openssl x509 -noout -serial' % VARS['molecule_web_port']).stdout.strip()
    return out.split('=', 1)[-1]


@pytest.fixture(scope='module', autouse=True)
def converged(host):
    """The tests start once step-ca answers /health after converge."""
    wait_for(lambda: host.run('curl --silent --fail --capath /nonexistent --cacert %s %s/health' % (ROOT, CA)),
             lambda result: result.rc == 0, 'step-ca /health')


def test_step_ca_service_active_and_hardened(host):
    service = host.service('step-ca')
    assert service.is_running
    assert service.is_enabled
    props = dict(line.split('=', 1) for line in host.check_output(
        'systemctl show step-ca -p User -p NoNewPrivileges -p ProtectSystem -p CapabilityBoundingSet'
        ' -p PrivateTmp -p ReadWritePaths').splitlines())
    assert props['User'] == 'step'
    assert props['NoNewPrivileges'] == 'yes'
    assert props['ProtectSystem'] == 'strict'
    assert props['PrivateTmp'] == 'yes'
    assert props['CapabilityBoundingSet'] == ''
    assert props['ReadWritePaths'] == '/etc/step-ca/db'


def test_health_over_tls_verified_by_the_root_only(host):
    # --capath /nonexistent: no system store, only the root the role created
    out = host.check_output('curl --silent --show-error --fail --capath /nonexistent --cacert %s %s/health'
                            % (ROOT, CA))
    assert '"status":"ok"' in out.replace(' ', '')
    # another root does not verify the CA
    wrong = host.run('openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /tmp/k.pem'
                     ' -out /tmp/other.crt -subj /CN=other -days 1 2>/dev/null && '
                     'curl --silent --capath /nonexistent --cacert /tmp/other.crt %s/health' % CA)
    assert wrong.rc == 60, wrong


def test_root_in_trust_store_and_python_env(host):
    assert host.file('/usr/local/share/ca-certificates/phoenix-root-ca.crt').exists
    assert host.run('curl --silent --fail %s/health' % CA).rc == 0
    python = host.run("python3 -c \"import requests; print(requests.get('%s/health', timeout=10).json()['status'])\""
                      % CA)
    assert python.stdout.strip() == 'ok', python
    environment = host.file('/etc/environment').content_string
    assert 'REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' in environment
    assert 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' in environment
    # services started by systemd get them too
    env = host.check_output('systemd-run --quiet --wait --pipe --collect /usr/bin/env')
    assert 'REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' in env


def test_root_fingerprint_published_and_root_fetched(host):
    fetched = os.path.join(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'], 'root_ca.crt')
    with open(fetched) as handle:
        assert handle.read() == host.file(ROOT).content_string


def test_provisioners_and_claims(host):
    provisioners = host.check_output('curl --silent --fail %s/provisioners' % CA)
    assert '"name":"services"' in provisioners.replace(' ', '')
    assert '"type":"ACME"' in provisioners.replace(' ', '')
    assert '"minTLSCertDuration":"1m0s"' in provisioners.replace(' ', '')


def test_secrets_not_readable_nor_logged(host):
    password = host.file('/etc/credstore/step-ca-password')
    assert password.user == 'root' and password.group == 'step' and password.mode == 0o640
    assert not host.file('/etc/step-ca/.provisioner-password').exists
    journal = host.check_output('journalctl --no-pager -o cat')
    assert VARS['step_ca_password'] not in journal
    assert VARS['step_ca_jwk_provisioner_password'] not in journal


def test_backup_of_ca_material(host):
    backups = host.check_output('ls /var/backups/step-ca').split()
    assert backups and all(re.match(r'^step-ca-\d{8}T\d{6}Z\.tar\.gz$', b) for b in backups)
    listing = host.check_output('tar -tzf /var/backups/step-ca/%s' % sorted(backups)[-1])
    assert './config/ca.json' in listing and './secrets/intermediate_ca_key' in listing


def test_certificate_issued_with_sans(host):
    sans = host.check_output('openssl x509 -noout -ext subjectAltName -in %s' % WEB['cert_path'])
    assert 'DNS:web.phoenix.test' in sans and 'DNS:localhost' in sans and 'IP Address:127.0.0.1' in sans
    verify = host.run('openssl verify -CAfile %s -untrusted %s %s' % (ROOT, WEB['chain_path'], WEB['cert_path']))
    assert verify.rc == 0, verify
    # key, certificate and chain are links through one "live" link into a version directory (swapped as a unit)
    for path, name in ((WEB['key_path'], 'key.pem'), (WEB['cert_path'], 'cert.pem'), (WEB['chain_path'], 'chain.pem')):
        assert host.file(path).is_symlink
        assert host.file(path).linked_to.startswith('/etc/nginx/tls/.web.crt.versions/v')
        assert host.file(path).linked_to.endswith('/' + name)
    key = host.file(host.file(WEB['key_path']).linked_to)
    assert key.mode == 0o600 and key.user == 'root'


def test_manifest_shape_certificate(host):
    bundle = host.file(SVC['cert_path']).content_string
    assert bundle.count('BEGIN CERTIFICATE') == 2  # leaf + intermediate, like `step ca certificate`
    leaf = SVC['cert_path'].replace('.crt', '.leaf.crt')
    sans = host.check_output('openssl x509 -noout -ext subjectAltName -in %s' % leaf)
    assert 'DNS:svc.phoenix.test' in sans and 'IP Address:10.77.0.111' in sans
    key = host.file(host.file(SVC['key_path']).linked_to)
    assert key.mode == 0o640 and key.uid == 0 and key.gid == 33
    config = host.file('/etc/phoenix-certs/svc.phoenix.test.json').content_string
    assert "sh -c 'date >> /var/lib/phx-pki-svc-hook'" in config
    # the role ran the command-string hook once, when it issued the certificate (not again when idempotent),
    # and recorded the serial it handed over
    assert len(host.file('/var/lib/phx-pki-svc-hook').content_string.splitlines()) == 1
    handed = json.loads(host.file('/var/lib/phoenix-certs/svc.phoenix.test.hooks.json').content_string)
    assert handed['serial'] == str(int(serial_of(host, leaf), 16))


def test_renewal_timer_enabled(host):
    timer = host.service('phoenix-cert-renew.timer')
    assert timer.is_enabled and timer.is_running
    props = host.check_output('systemctl show phoenix-cert-renew.timer -p TimersCalendar -p Persistent'
                              ' -p RandomizedDelayUSec')
    assert 'Persistent=yes' in props and 'RandomizedDelayUSec=1min' in props


@pytest.fixture
def timer_held(host):
    """The renewal timer stopped while a test runs its service by hand: the timer (every 5 minutes, the web
    certificate due 10 s after issue) would otherwise renew between the test's reads now and then. A run it already
    started is waited out; the timer is started again afterwards."""
    def service_state():
        return host.run('systemctl is-active phoenix-cert-renew.service').stdout.strip()

    host.run_expect([0], 'systemctl stop phoenix-cert-renew.timer')
    try:
        wait_for(service_state, lambda state: state != 'activating', 'a renewal the timer started to end', timeout=120)
        yield
    finally:
        host.run_expect([0], 'systemctl start phoenix-cert-renew.timer')


@pytest.mark.usefixtures('timer_held')
def test_timer_renews_five_minute_certificate_while_nginx_keeps_serving(host):
    assert host.service('nginx').is_running
    before = serial_of(host, WEB['cert_path'])
    wait_equal(lambda: served_serial(host), before, 'nginx serving the issued certificate')
    not_after = host.check_output('openssl x509 -noout -enddate -in %s' % WEB['cert_path'])
    host.run('rm -f %s' % MARKER)
    # a bounded loop of TLS requests (verified by the trust store) while the renewal runs; each request may take
    # up to 10 s (a loaded machine answers slowly, which is not what this checks)
    host.run_expect([0], "sh -c 'for i in $(seq 1 40); do curl -s -o /dev/null -w \"%%{http_code}\\n\""
                         " --max-time 10 %s; sleep 0.1; done > /tmp/phx-pki-loop.log 2>&1 &'" % WEB_URL)
    # wait until less than the timer's threshold (4m50s) is left of the 5-minute certificate
    wait_for(lambda: host.run('openssl x509 -noout -checkend 290 -in %s' % WEB['cert_path']).rc,
             lambda rc: rc != 0, 'the certificate coming below the renewal threshold')
    host.run_expect([0], 'systemctl start phoenix-cert-renew.service')
    after = serial_of(host, WEB['cert_path'])
    assert after != before
    assert host.file(MARKER).exists, 'the hook did not run'
    # the hook reloads nginx; its old workers serve the old certificate until they exit
    wait_equal(lambda: served_serial(host), after, 'nginx reloaded with the renewed certificate')
    assert host.check_output('openssl x509 -noout -enddate -in %s' % WEB['cert_path']) != not_after
    # the key stayed; the chain file holds the new leaf
    assert serial_of(host, WEB['chain_path']) == after
    # the loop cannot outlast 40 x (10 + 0.1) s
    wait_for(lambda: host.run('pgrep -f "[s]eq 1 40"').rc, lambda rc: rc != 0, 'the request loop to finish',
             timeout=420)
    codes = host.check_output('cat /tmp/phx-pki-loop.log').split()
    assert len(codes) == 40 and all(code == '200' for code in codes), codes
    # journald may write the service's last lines after the unit has finished
    wait_for(lambda: host.check_output('journalctl -u phoenix-cert-renew.service --no-pager -o cat'),
             lambda journal: 'web: renewed' in journal and 'hook systemctl try-reload-or-restart nginx.service ok'
             in journal, 'the renewal and its hook in the journal')


def test_renewal_service_not_due_makes_no_change(host):
    before = serial_of(host, SVC['cert_path'].replace('.crt', '.leaf.crt'))
    host.run_expect([0], 'systemctl start phoenix-cert-renew.service')
    assert serial_of(host, SVC['cert_path'].replace('.crt', '.leaf.crt')) == before
    listing = host.check_output('/usr/local/sbin/phoenix-cert-renew --list')
    assert '"name": "svc.phoenix.test"' in listing


CA_ONLY = os.path.join(SCENARIO, 'ca_only.yml')
UNIT = '/etc/systemd/system/step-ca.service'
PASSWORD_FILE = '/etc/credstore/step-ca-password'
CONFIG = '/etc/step-ca/config/ca.json'
INTERMEDIATE = '/etc/step-ca/certs/intermediate_ca.crt'
SECRETS = (VARS['step_ca_password'], VARS['step_ca_jwk_provisioner_password'])
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


def ca_only(*args):
    """Run ca_only.yml (the step_ca role alone, then a check of the facts it publishes) on the instance, with more
    ansible-playbook ``args``; its output without colours."""
    env = dict(os.environ)
    run = subprocess.run(['ansible-playbook'] + list(args) + ['-i', env['MOLECULE_INVENTORY_FILE'], CA_ONLY],
                         env=env, capture_output=True, text=True, check=False)
    out = ANSI.sub('', run.stdout)
    assert run.returncode == 0, out[-6000:] + run.stderr[-2000:]
    for secret in SECRETS:
        assert secret not in out + run.stderr
    return out


def steps(out):
    """{'TASK <name>' or 'HANDLER <name>': the output of that task or handler} for the step_ca role's tasks."""
    found = {}
    for block in re.split(r'\n(?=TASK \[|RUNNING HANDLER \[)', out):
        match = re.match(r'(TASK|RUNNING HANDLER) \[thinkheads\.phoenix\.step_ca : (.*?)\] \*', block)
        if match:
            found['%s %s' % ('TASK' if match.group(1) == 'TASK' else 'HANDLER', match.group(2))] = block
    return found


def status(found, prefix):
    """'changed', 'ok' or 'skipping': how the one task or handler whose key starts with ``prefix`` ended."""
    names = [name for name in found if name.startswith(prefix)]
    assert len(names) == 1, (prefix, sorted(found))
    words = set(re.findall(r'^(changed|ok|skipping): \[', found[names[0]], re.M))
    assert len(words) == 1, found[names[0]]
    return words.pop()


def attributes(host, paths):
    return {path: '%o %s:%s' % (host.file(path).mode, host.file(path).user, host.file(path).group) for path in paths}


def main_pid(host):
    return host.check_output('systemctl show -p MainPID --value step-ca.service')


@pytest.mark.usefixtures('timer_held')
def test_drifted_modes_and_owners_found_in_check_mode_then_repaired_without_restart(host):
    """The modes of the CA directory, of the password's directory and of ca.json, and the owner of a certificate in
    the CA directory: --check --diff reports and shows them and writes nothing; a run repairs them and step-ca keeps
    running (none of these needs a restart or a reload)."""
    paths = ['/etc/step-ca', '/etc/credstore', CONFIG, INTERMEDIATE]
    converged = attributes(host, paths)
    assert [converged[path].split()[0] for path in paths[:3]] == ['700', '750', '600'], converged
    pid = main_pid(host)
    host.check_output('chmod 0755 /etc/step-ca && chmod 0770 /etc/credstore && chmod 0644 %s && chown root:root %s'
                      % (CONFIG, INTERMEDIATE))
    drifted = attributes(host, paths)
    assert all(drifted[path] != converged[path] for path in paths), drifted

    found = steps(ca_only('--check', '--diff'))
    assert status(found, 'TASK CA directory (STEPPATH') == 'changed'
    assert '/etc/step-ca (attributes)' in found[[name for name in found if name.startswith('TASK CA directory')][0]]
    assert status(found, 'TASK CA material owned by the service user') == 'changed'
    assert status(found, 'TASK Configuration still owned by the service user') == 'changed'
    assert status(found, 'TASK Key password file') == 'ok'
    assert status(found, 'TASK Systemd unit of step-ca') == 'ok'
    assert not [name for name in found if name.startswith('HANDLER')], sorted(found)
    assert attributes(host, paths) == drifted, 'check mode wrote something'

    found = steps(ca_only('--diff'))
    for prefix in ('TASK CA directory (STEPPATH', 'TASK CA material owned', 'TASK Configuration still owned'):
        assert status(found, prefix) == 'changed'
    assert not [name for name in found if name.startswith('HANDLER')], sorted(found)
    assert attributes(host, paths) == converged
    assert main_pid(host) == pid


@pytest.mark.usefixtures('timer_held')
def test_changed_unit_and_key_password_restart_step_ca(host):
    """A line added to the unit and another content in the key password file: a run shows the unit's change (not the
    password), rewrites both, reloads systemd and restarts step-ca (not a reload, no backup: the CA material is
    unchanged), which answers /health again. (Check mode writing nothing: the test above.)"""
    pid = main_pid(host)
    host.check_output("echo '# drift' >> %s && printf not-the-key-password > %s" % (UNIT, PASSWORD_FILE))

    out = ca_only('--diff')
    found = steps(out)
    assert status(found, 'TASK Systemd unit of step-ca') == 'changed'
    assert '-# drift' in found[[name for name in found if name.startswith('TASK Systemd unit of step-ca')][0]]
    assert status(found, 'TASK Restart step-ca when its unit changed') == 'changed'
    assert status(found, 'TASK Key password file') == 'changed'
    assert 'not-the-key-password' not in out
    # in this order (handlers/main.yml); no reload and no backup
    handlers = [name for name in found if name.startswith('HANDLER')]
    assert handlers == ['HANDLER Reload systemd', 'HANDLER Restart the step-ca service', 'HANDLER Remember the restart'], \
        handlers
    assert status(found, 'HANDLER Restart the step-ca service') == 'changed'
    assert '# drift' not in host.file(UNIT).content_string
    assert host.file(PASSWORD_FILE).content_string == VARS['step_ca_password']
    assert attributes(host, [UNIT, PASSWORD_FILE]) == {UNIT: '644 root:root', PASSWORD_FILE: '640 root:step'}
    wait_for(lambda: main_pid(host), lambda value: value not in (pid, '0'), 'step-ca running as a new process')
    wait_for(lambda: host.run('curl --silent --fail --capath /nonexistent --cacert %s %s/health' % (ROOT, CA)).rc,
             lambda rc: rc == 0, 'step-ca /health after the restart')


@pytest.mark.usefixtures('timer_held')
def test_a_stopped_step_ca_is_started_and_not_restarted(host):
    """step-ca stopped by hand: the unit's task (thinkheads.phoenix.file_set with services) finds it and starts it;
    no handler runs (a start is not a changed unit), and /health answers again."""
    host.check_output('systemctl stop step-ca.service')
    found = steps(ca_only('--diff'))
    assert status(found, 'TASK Systemd unit of step-ca') == 'changed'
    assert 'step-ca.service: started' in found[[name for name in found if name.startswith('TASK Systemd unit')][0]]
    assert status(found, 'TASK Restart step-ca when its unit changed') == 'ok'
    assert not [name for name in found if name.startswith('HANDLER')], sorted(found)
    wait_for(lambda: host.run('curl --silent --fail --capath /nonexistent --cacert %s %s/health' % (ROOT, CA)).rc,
             lambda rc: rc == 0, 'step-ca /health after the start')


@pytest.mark.parametrize('unit', ['step-ca.service', 'phoenix-cert-renew.timer'])
def test_units_not_failed(host, unit):
    assert host.run('systemctl is-failed %s' % unit).stdout.strip() != 'failed'


def test_no_errors_logged(host):
    assert_no_service_errors(host, ['step-ca', 'nginx', 'phoenix-cert-renew'])
