# -*- coding: utf-8 -*-
"""step_ca_* modules against a real step-ca (see conftest.py)."""

import json
import os
import shutil
import stat
import subprocess
import sys

import step_ca
from stepca_testlib import ADMIN, ADMIN_PASSWORD, CLIENT_DIR, STEP, free_port, run_module, self_signed

ZERO = {}


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def snapshot(directory):
    """Every file (content, mode, mtime) and link (target) under ``directory``, versions included."""
    out = {}
    for root, dirs, files in os.walk(str(directory)):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, str(directory))
            if os.path.islink(path):
                out[rel] = ('link', os.readlink(path))
            elif os.path.isfile(path):
                with open(path, 'rb') as handle:
                    out[rel] = (handle.read(), os.stat(path).st_mode, os.stat(path).st_mtime_ns)
    return out


# -- bootstrap --------------------------------------------------------------------------------------------

def test_bootstrap_fetches_the_pinned_root_then_stays_offline(stepca, tmp_path):
    dest = str(tmp_path / 'root.crt')
    args = dict(ca_url=stepca.url, fingerprint=stepca.fingerprint.upper(), dest=dest, install_in_trust_store=False,
                mode='0640')
    mark = stepca.log_mark()
    check = run_module('step_ca_bootstrap', args, check=True)
    assert check['changed'] is True and not os.path.exists(dest)

    first = run_module('step_ca_bootstrap', args)
    assert first['changed'] is True, first
    assert first['fingerprint'] == stepca.fingerprint
    assert first['subject'] == 'CN=Phoenix Test CA Root CA,O=Phoenix Test CA'
    assert first['diff']['after']['fingerprint'] == stepca.fingerprint and first['diff']['before'] == {}
    with open(dest, 'rb') as handle, open(stepca.root, 'rb') as expected:
        assert handle.read() == expected.read()
    assert mode_of(dest) == 0o640
    stepca.wait_count(mark, '/root/%s' % stepca.fingerprint, 2)              # check mode + first run

    mark = stepca.log_mark()
    second = run_module('step_ca_bootstrap', args)
    assert second['changed'] is False and second['ca_requests'] == ZERO
    assert stepca.requests_since(mark) == []


def test_bootstrap_runs_update_ca_certificates_only_when_the_root_changed(stepca, tmp_path):
    """A stand-in update-ca-certificates first on PATH records each call (the host's trust store is not touched)."""
    tools = tmp_path / 'bin'
    tools.mkdir()
    calls = tmp_path / 'calls'
    fake = tools / 'update-ca-certificates'
    fake.write_text('#!/bin/sh\necho called >> %s\n' % calls)
    fake.chmod(0o755)
    env = {'PATH': '%s:%s' % (tools, os.environ['PATH'])}
    args = dict(ca_url=stepca.url, fingerprint=stepca.fingerprint, dest=str(tmp_path / 'phoenix-root-ca.crt'))
    first = run_module('step_ca_bootstrap', args, env_extra=env)
    assert first['changed'] is True and first['trust_store_updated'] is True, first
    assert calls.read_text() == 'called\n'
    second = run_module('step_ca_bootstrap', args, env_extra=env)
    assert second['changed'] is False and second['trust_store_updated'] is False
    assert calls.read_text() == 'called\n'


def test_bootstrap_wrong_fingerprint_fails_and_writes_nothing(stepca, tmp_path):
    dest = str(tmp_path / 'root.crt')
    wrong = 'ab' * 32
    result = run_module('step_ca_bootstrap', dict(ca_url=stepca.url, fingerprint=wrong, dest=dest,
                                                  install_in_trust_store=False))
    assert result.get('failed') is True
    assert wrong in result['msg'] and stepca.fingerprint in result['msg'], result['msg']
    assert not os.path.exists(dest) and os.listdir(str(tmp_path)) == []


def test_bootstrap_ca_down_is_a_clear_error(tmp_path):
    url = 'https://127.0.0.1:%d' % free_port()
    result = run_module('step_ca_bootstrap', dict(ca_url=url, fingerprint='ab' * 32, dest=str(tmp_path / 'r.crt'),
                                                  install_in_trust_store=False, retries=1))
    assert result.get('failed') is True
    assert result['msg'].startswith('Step-CA at %s is unreachable' % url) and 'connection refused' in result['msg']


# -- enrolment and idempotence ----------------------------------------------------------------------------

def test_enroll_then_noop_makes_no_ca_request(stepca, proxy, tmp_path):
    args = stepca.cert_args(tmp_path, 'idem')
    mark = stepca.log_mark()
    first = run_module('step_ca_certificate', args)
    assert first['changed'] is True and first['action'] == 'issued', first
    assert first['sans'] == ['idem.phoenix.test', 'idem-alt.phoenix.test', '127.0.0.1']
    assert first['issuer'] == 'CN=Phoenix Test CA Intermediate CA,O=Phoenix Test CA'
    assert first['ca_requests'] == {'/provisioners': 1, '/1.0/sign': 1}
    stepca.wait_count(mark, '/1.0/sign', 1, 'POST')
    assert mode_of(args['key_path']) == 0o600 and mode_of(args['cert_path']) == 0o644
    chain = step_ca.load_certificate_file(args['chain_path'])
    assert len(chain) == 2 and chain[0].serial_number == int(first['serial'])
    files = snapshot(tmp_path)

    # Second run through the counting proxy: no connection at all, nothing in step-ca's log, nothing written.
    mark = stepca.log_mark()
    second = run_module('step_ca_certificate', dict(args, ca_url=proxy.url))
    assert second['changed'] is False and second['action'] == 'none', second
    assert second['ca_requests'] == ZERO
    assert proxy.connections == 0
    assert stepca.count(mark, '/1.0/sign') == 0 and stepca.requests_since(mark) == []
    assert second['serial'] == first['serial']
    assert snapshot(tmp_path) == files


def test_check_mode_writes_nothing_and_diff_shows_the_change(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'check')
    mark = stepca.log_mark()
    result = run_module('step_ca_certificate', args, check=True)
    assert result['changed'] is True and result['action'] == 'issued'
    assert result['diff']['before'] == {}
    assert result['diff']['after']['sans'] == ['check.phoenix.test', 'check-alt.phoenix.test', '127.0.0.1']
    assert os.listdir(str(tmp_path)) == []
    assert stepca.count(mark, '/1.0/sign') == 0

    run_module('step_ca_certificate', args)
    files = snapshot(tmp_path)
    changed = run_module('step_ca_certificate', dict(args, sans=['other.phoenix.test']), check=True)
    assert changed['changed'] is True and changed['action'] == 'reissued'
    assert changed['diff']['before']['sans'] == ['check.phoenix.test', 'check-alt.phoenix.test', '127.0.0.1']
    assert changed['diff']['after']['sans'] == ['check.phoenix.test', 'other.phoenix.test']
    assert snapshot(tmp_path) == files


def test_san_change_reissues_with_a_new_key(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'sans')
    first = run_module('step_ca_certificate', args)
    with open(args['key_path'], 'rb') as handle:
        key_before = handle.read()
    second = run_module('step_ca_certificate', dict(args, sans=['sans-alt.phoenix.test', 'new.phoenix.test']))
    assert second['changed'] is True and second['action'] == 'reissued', second
    assert 'SANs' in second['reason']
    assert second['sans'] == ['sans.phoenix.test', 'sans-alt.phoenix.test', 'new.phoenix.test']
    assert second['serial'] != first['serial']
    assert second['diff']['before']['sans'] != second['diff']['after']['sans']
    with open(args['key_path'], 'rb') as handle:
        assert handle.read() != key_before
    third = run_module('step_ca_certificate', dict(args, sans=['new.phoenix.test', 'sans-alt.phoenix.test']))
    assert third['changed'] is False                                   # SAN order does not matter


def test_key_type_and_common_name_changes_reissue(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'ktype')
    run_module('step_ca_certificate', args)
    rsa = run_module('step_ca_certificate', dict(args, key_type='RSA2048'))
    assert rsa['action'] == 'reissued' and rsa['key_type'] == 'RSA2048' and 'key type' in rsa['reason']
    ed = run_module('step_ca_certificate', dict(args, key_type='Ed25519'))
    assert ed['action'] == 'reissued' and ed['key_type'] == 'Ed25519'
    cn = run_module('step_ca_certificate', dict(args, key_type='Ed25519', common_name='renamed.phoenix.test'))
    assert cn['action'] == 'reissued' and cn['common_name'] == 'renamed.phoenix.test' and 'common name' in cn['reason']


def test_foreign_issuer_is_reissued(stepca, tmp_path):
    """A certificate (with matching key) that the current CA did not sign is replaced."""
    args = stepca.cert_args(tmp_path, 'foreign', sans=[], chain_path=None)
    key_pem, cert_pem = self_signed('foreign.phoenix.test')
    with open(args['key_path'], 'wb') as handle:
        handle.write(key_pem)
    with open(args['cert_path'], 'wb') as handle:
        handle.write(cert_pem)
    mark = stepca.log_mark()
    result = run_module('step_ca_certificate', args)
    assert result['action'] == 'reissued' and 'not signed by the current CA' in result['reason'], result
    # without chain_path the intermediates come from the CA (one GET), never a second /sign
    assert result['ca_requests'] == {'/intermediates.pem': 1, '/provisioners': 1, '/1.0/sign': 1}
    again = run_module('step_ca_certificate', args)
    assert again['changed'] is False and again['ca_requests'] == {'/intermediates.pem': 1}
    stepca.wait_count(mark, '/1.0/sign', 1)


def test_owner_group_mode_are_honoured(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'perm', owner='nobody', group='nogroup', mode='0640', key_mode='0400')
    result = run_module('step_ca_certificate', args)
    assert result['changed'] is True
    for path, mode in ((args['cert_path'], 0o640), (args['chain_path'], 0o640), (args['key_path'], 0o400)):
        info = os.stat(path)
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, 65534, 65534), path
    # A mode drift alone is repaired without asking the CA.
    os.chmod(args['key_path'], 0o644)
    fixed = run_module('step_ca_certificate', args)
    assert fixed['changed'] is True and fixed['action'] == 'none' and fixed['ca_requests'] == ZERO
    assert mode_of(args['key_path']) == 0o400


# -- renewal -----------------------------------------------------------------------------------------------

def test_five_minute_certificate_renewed_by_renew_if_needed(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'short', lifetime='300s', owner='nobody', mode='0640')
    first = run_module('step_ca_certificate', args)
    assert first['action'] == 'issued'
    cert = step_ca.load_certificate_file(args['cert_path'])[0]
    info = step_ca.certificate_info(cert)
    assert 5 * 60 <= info['lifetime_seconds'] <= 6 * 60 + 5            # 5m + step-ca's 1m backdate
    with open(args['key_path'], 'rb') as handle:
        key_before = handle.read()

    # Above the threshold: nothing happens (and the CA is not asked).
    mark = stepca.log_mark()
    assert step_ca.renew_if_needed(stepca.url, stepca.root, args['cert_path'], args['key_path'],
                                   args['chain_path'], threshold='1m') is False
    assert step_ca.renew_if_needed(stepca.url, stepca.root, args['cert_path'], args['key_path'],
                                   args['chain_path']) is False          # default: a third of ~6m is 2m
    assert stepca.requests_since(mark) == []

    # Below the threshold: renewed over mTLS, same key, owner and mode kept, chain rewritten.
    assert step_ca.renew_if_needed(stepca.url, stepca.root, args['cert_path'], args['key_path'],
                                   args['chain_path'], threshold='10m') is True
    stepca.wait_count(mark, '/1.0/renew', 1, 'POST')
    assert stepca.count(mark, '/1.0/sign') == 0
    renewed = step_ca.load_certificate_file(args['cert_path'])[0]
    assert renewed.serial_number != cert.serial_number
    assert step_ca.certificate_info(renewed)['sans'] == info['sans']
    with open(args['key_path'], 'rb') as handle:
        assert handle.read() == key_before
    st = os.stat(args['cert_path'])
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o640, 65534)
    chain = step_ca.load_certificate_file(args['chain_path'])
    assert chain[0].serial_number == renewed.serial_number and len(chain) == 2

    # The module renews (not re-issues) when only the lifetime threshold is crossed.
    module = run_module('step_ca_certificate', dict(args, renew_before='10m'))
    assert module['action'] == 'renewed' and module['changed'] is True, module
    assert module['ca_requests'] == {'/1.0/renew': 1}
    assert 'below 10m' in module['reason']


def install_client(lib):
    """The client package copied into ``lib`` the way the step_certificates role installs it on a guest."""
    shutil.copytree(CLIENT_DIR, str(lib / 'step_ca'), ignore=shutil.ignore_patterns('__pycache__'))
    return str(lib)


def test_renewal_cli_prints_json(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'cli', lifetime='5m')
    run_module('step_ca_certificate', args)
    # The package on its own, as the role installs it on a guest (plain python, no ansible): python3 -m step_ca.
    lib = install_client(tmp_path / 'lib')
    cmd = [sys.executable, '-m', 'step_ca', '--ca-url', stepca.url, '--root', stepca.root, '--cert', args['cert_path'],
           '--key', args['key_path'], '--threshold', '90%']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, cwd=lib)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['renewed'] is True


# -- revocation --------------------------------------------------------------------------------------------

def test_revoke_then_already_revoked(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'rev')
    issued = run_module('step_ca_certificate', args)
    check = run_module('step_ca_certificate', dict(args, state='revoked'), check=True)
    assert check['changed'] is True and check['ca_requests'] == ZERO
    mark = stepca.log_mark()
    revoked = run_module('step_ca_certificate', dict(args, state='revoked', revoke_reason='superseded'))
    assert revoked['changed'] is True and revoked['action'] == 'revoked' and revoked['serial'] == issued['serial']
    stepca.wait_count(mark, '/1.0/revoke', 1, 'POST')
    again = run_module('step_ca_certificate', dict(args, state='revoked'))
    assert again['changed'] is False and 'already revoked' in again['reason']
    # A revoked certificate cannot renew itself: the module falls back to a fresh issue.
    replaced = run_module('step_ca_certificate', dict(args, renew_before='100h'))
    assert replaced['action'] == 'reissued' and 'renewal refused' in replaced['reason'], replaced
    assert replaced['serial'] != issued['serial']


def test_revoke_with_token_when_the_key_is_gone(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'revott')
    run_module('step_ca_certificate', args)
    os.unlink(args['key_path'])
    result = run_module('step_ca_certificate', dict(args, state='revoked'))
    assert result['changed'] is True and result['ca_requests']['/1.0/revoke'] == 1


# -- errors ------------------------------------------------------------------------------------------------

def test_bad_password_is_a_clear_error_and_nothing_is_written(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'badpw', provisioner_password_file=None, provisioner_password='Wr0ng-pa55word')
    result = run_module('step_ca_certificate', args)
    assert result.get('failed') is True
    assert result['msg'].startswith("the provisioner password does not decrypt the key of provisioner 'admin'")
    assert 'Wr0ng-pa55word' not in json.dumps(result)
    assert os.listdir(str(tmp_path)) == []


def test_unknown_provisioner_lists_the_names(stepca, tmp_path):
    result = run_module('step_ca_certificate', stepca.cert_args(tmp_path, 'nop', provisioner='nope'))
    assert result.get('failed') is True
    assert "no JWK provisioner named 'nope'" in result['msg'] and 'admin (JWK)' in result['msg']
    assert os.listdir(str(tmp_path)) == []


def test_ca_down_is_a_clear_error(stepca, tmp_path):
    url = 'https://127.0.0.1:%d' % free_port()
    result = run_module('step_ca_certificate', stepca.cert_args(tmp_path, 'down', url=url, retries=1))
    assert result.get('failed') is True
    assert result['msg'] == ('Step-CA at %s is unreachable (GET /provisioners): connection refused '
                             '(after 2 attempts)' % url)
    assert os.listdir(str(tmp_path)) == []


def test_tls_is_verified_against_the_pinned_root(stepca, tmp_path):
    other_root = tmp_path / 'other-root.crt'
    other_root.write_bytes(self_signed('Some Other Root')[1])
    out = tmp_path / 'out'
    out.mkdir()
    result = run_module('step_ca_certificate', stepca.cert_args(out, 'tls', root=str(other_root)))
    assert result.get('failed') is True
    assert result['msg'].startswith('TLS verification failed for %s/provisioners' % stepca.url), result['msg']
    assert os.listdir(str(out)) == []


def test_bad_input_fails_before_any_request(stepca, tmp_path):
    mark = stepca.log_mark()
    bad = run_module('step_ca_certificate', stepca.cert_args(tmp_path, 'bad', renew_before='soon'))
    assert bad.get('failed') is True and 'invalid renewal threshold' in bad['msg']
    nopw = run_module('step_ca_certificate', stepca.cert_args(tmp_path, 'bad', provisioner_password_file=None))
    assert nopw.get('failed') is True and 'provisioner_password' in nopw['msg']
    assert stepca.requests_since(mark) == [] and os.listdir(str(tmp_path)) == []


# -- info --------------------------------------------------------------------------------------------------

def test_certificate_info(stepca, tmp_path):
    args = stepca.cert_args(tmp_path, 'info', lifetime='30m')
    run_module('step_ca_certificate', args)
    info = run_module('step_ca_certificate_info', dict(path=args['cert_path'], root=stepca.root,
                                                       chain_path=args['chain_path'], key_path=args['key_path']))
    assert info['exists'] is True and info['changed'] is False
    assert info['common_name'] == 'info.phoenix.test' and info['subject'] == 'CN=info.phoenix.test'
    assert info['sans'] == ['info.phoenix.test', 'info-alt.phoenix.test', '127.0.0.1']
    assert info['issuer'].startswith('CN=Phoenix Test CA Intermediate CA')
    assert info['key_type'] == 'EC256' and info['chains_to_root'] is True and info['key_matches'] is True
    assert 25 * 60 < info['seconds_left'] <= 30 * 60 and info['expired'] is False
    missing = run_module('step_ca_certificate_info', dict(path=str(tmp_path / 'missing.crt')))
    assert missing['exists'] is False


# -- provisioners ------------------------------------------------------------------------------------------

def test_provisioner_module_is_idempotent_and_step_ca_accepts_its_key(stepca, tmp_path):
    args = dict(config=stepca.config, name='services', type='JWK', password='services-secret',
                claims={'minTLSCertDuration': '1m', 'defaultTLSCertDuration': '1h', 'maxTLSCertDuration': '2d'})
    with open(stepca.config) as handle:
        before = handle.read()
    check = run_module('step_ca_provisioner', args, check=True)
    assert check['changed'] is True
    with open(stepca.config) as handle:
        assert handle.read() == before

    first = run_module('step_ca_provisioner', args)
    assert first['changed'] is True and first['key_note'] == 'new key'
    assert first['provisioner']['claims']['maxTLSCertDuration'] == '48h'
    assert first['provisioner']['encryptedKey'].endswith('...')
    assert 'services-secret' not in json.dumps(first)
    assert first['diff']['before'] == '' and '"name": "services"' in first['diff']['after']
    second = run_module('step_ca_provisioner', args)
    assert second['changed'] is False and second['key_note'] == 'kept the existing key'

    with open(stepca.config) as handle:
        config = json.load(handle)
    entry = [p for p in config['authority']['provisioners'] if p['name'] == 'services'][0]
    header = step_ca.jwe_header(entry['encryptedKey'])
    assert header['alg'] == 'PBES2-HS256+A128KW' and header['p2c'] == 100000
    # step (the Go CLI) decrypts the key the module wrote.
    pwfile = tmp_path / 'pw'
    pwfile.write_text('services-secret')
    proc = subprocess.run([STEP, 'crypto', 'jwe', 'decrypt', '--password-file', str(pwfile)],
                          input=entry['encryptedKey'], capture_output=True, text=True, timeout=60,
                          env=stepca.env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['kid'] == entry['key']['kid']

    # After a reload step-ca accepts tokens signed with the new key.
    acme = run_module('step_ca_provisioner', dict(config=stepca.config, name='acme', type='ACME',
                                                  challenges=['http-01', 'tls-alpn-01'], force_cn=True,
                                                  claims={'defaultTLSCertDuration': '24h'}))
    assert acme['changed'] is True
    assert run_module('step_ca_provisioner', dict(config=stepca.config, name='acme', type='ACME',
                                                  challenges=['http-01', 'tls-alpn-01'], force_cn=True,
                                                  claims={'defaultTLSCertDuration': '24h'}))['changed'] is False
    stepca.reload()
    out = tmp_path / 'out'
    out.mkdir()
    enrolled = run_module('step_ca_certificate', stepca.cert_args(out, 'viaservices', provisioner='services',
                                                                  provisioner_password_file=None,
                                                                  provisioner_password='services-secret'))
    assert enrolled['action'] == 'issued', enrolled
    names = [p['name'] for p in step_ca.StepCAClient(stepca.url, root_path=stepca.root).provisioners()]
    assert names == [ADMIN, 'services', 'acme']

    # Removing them again (the admin provisioner and its key stay untouched).
    for name in ('services', 'acme'):
        gone = run_module('step_ca_provisioner', dict(config=stepca.config, name=name, state='absent'))
        assert gone['changed'] is True and gone['provisioner'] == {}
    with open(stepca.config) as handle:
        assert [p['name'] for p in json.load(handle)['authority']['provisioners']] == [ADMIN]
    stepca.reload()


def test_provisioner_bad_claims_and_wrong_password(stepca, tmp_path):
    with open(stepca.config) as handle:
        before = handle.read()
    bad = run_module('step_ca_provisioner', dict(config=stepca.config, name='x', password='x-provisioner-secret',
                                                 claims={'minTLSCertDuration': '2h', 'maxTLSCertDuration': '1h'}))
    assert bad.get('failed') is True and 'minTLSCertDuration (2h) <= defaultTLSCertDuration' in bad['msg']
    unknown = run_module('step_ca_provisioner', dict(config=stepca.config, name='x', password='x-provisioner-secret',
                                                     claims={'maxTLSDuration': '1h'}))
    assert unknown.get('failed') is True and "unknown provisioner claim 'maxTLSDuration'" in unknown['msg']
    # A different password for the existing admin provisioner would replace its key: check mode shows it.
    other = run_module('step_ca_provisioner', dict(config=stepca.config, name=ADMIN, password='not-it'), check=True)
    assert other['changed'] is True and 'does not decrypt' in other['key_note']
    same = run_module('step_ca_provisioner', dict(config=stepca.config, name=ADMIN, password=ADMIN_PASSWORD),
                      check=True)
    assert same['changed'] is False
    with open(stepca.config) as handle:
        assert handle.read() == before


# -- the renewal script on the versioned files, and the lock it shares with the module --------------------------

RENEW_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            'roles', 'step_certificates', 'files', 'phoenix_cert_renew.py')


def test_timer_retries_a_failed_hook_when_the_certificate_is_not_due(stepca, tmp_path):
    """Issued by the module, renewed by phoenix-cert-renew with the real client library: the reload hook fails, so
    the serial is not recorded; the next run finds nothing due and still runs the hook, which now succeeds."""
    certs = tmp_path / 'certs'
    certs.mkdir()
    args = stepca.cert_args(certs, 'timer', lifetime='5m', key_mode='0640')
    assert run_module('step_ca_certificate', args)['action'] == 'issued'
    lib = install_client(tmp_path / 'lib')
    conf = tmp_path / 'conf'
    conf.mkdir()
    flag, log = tmp_path / 'reload-works', tmp_path / 'reloads'
    config = {'name': 'timer', 'ca_url': stepca.url, 'root': stepca.root, 'cert_path': args['cert_path'],
              'key_path': args['key_path'], 'chain_path': args['chain_path'], 'renew_before': '10m',
              'hooks': [['sh', '-c', 'echo reload >> %s && test -e %s' % (log, flag)]]}
    state = tmp_path / 'state'
    cmd = [sys.executable, RENEW_SCRIPT, '--config-dir', str(conf), '--lib-dir', str(lib), '--state-dir', str(state),
           '--lock', str(tmp_path / 'renew.lock')]

    def run(threshold):
        (conf / 'timer.json').write_text(json.dumps(dict(config, renew_before=threshold)))
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    # the role would have handed the issued serial; the timer renews (10m > 5m) and the reload fails
    state.mkdir()
    issued = step_ca.certificate_info(step_ca.load_certificate_file(args['cert_path'])[0])['serial']
    (state / 'timer.hooks.json').write_text(json.dumps({'serial': issued}))
    first = run('10m')
    assert first.returncode == 1, first.stdout
    renewed = step_ca.certificate_info(step_ca.load_certificate_file(args['cert_path'])[0])['serial']
    assert renewed != issued and 'timer: renewed' in first.stdout and 'hooks failed' in first.stdout
    assert json.loads((state / 'timer.hooks.json').read_text())['serial'] == issued
    store = certs / '.timer.crt.versions'
    assert os.readlink(str(store / 'live')) == 'v2' and mode_of(args['key_path']) == 0o640

    flag.write_text('')
    second = run('1m')
    assert second.returncode == 0, second.stdout
    assert 'timer: not due' in second.stdout and 'serial %s handed to the hooks' % renewed in second.stdout
    assert json.loads((state / 'timer.hooks.json').read_text())['serial'] == renewed

    third = run('1m')
    assert third.returncode == 0 and 'handed' not in third.stdout
    assert log.read_text().split() == ['reload', 'reload']
    key = step_ca.load_private_key_file(args['key_path'])
    assert step_ca.key_matches_certificate(key, step_ca.load_certificate_file(args['cert_path'])[0])


def test_module_waits_for_the_lock_of_the_timer(stepca, tmp_path):
    import fcntl
    import threading
    lock = str(tmp_path / 'renew.lock')
    certs = tmp_path / 'certs'
    certs.mkdir()
    args = stepca.cert_args(certs, 'locked', lock_file=lock, lock_timeout=60)
    with open(lock, 'a') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = {}
        thread = threading.Thread(target=lambda: result.update(run_module('step_ca_certificate', args)))
        thread.start()
        thread.join(4)
        assert thread.is_alive() and os.listdir(str(certs)) == []     # waiting, nothing written
    thread.join(120)
    assert not thread.is_alive(), 'the module still running 120 s after the lock was released'
    assert result['changed'] is True and result['action'] == 'issued', result
