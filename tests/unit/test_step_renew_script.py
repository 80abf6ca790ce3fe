# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The renewal script of the step_certificates role (roles/step_certificates/files/phoenix_cert_renew.py).

The CA is replaced by a fake client here (the molecule scenario molecule/step_ca and tests/stepca run the
real step-ca); hooks are real commands run by the script.
"""

import datetime
import importlib.util
import json
import os
import shutil
import sys
import types

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'roles', 'step_certificates', 'files', 'phoenix_cert_renew.py')
CLIENT = os.path.join(REPO, 'plugins', 'module_utils', 'step_ca')


def load_script():
    spec = importlib.util.spec_from_file_location('phoenix_cert_renew_under_test', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


script = load_script()


class FakeError(Exception):
    pass


def fake_client(due=(), fail=(), serials=None):
    """A stand-in for step_ca: renews the certificates named in ``due`` (serial 41 -> 42), raises for ``fail``."""
    calls = []
    serials = serials if serials is not None else {}

    def renew_if_needed(ca_url, root_path, cert_path, key_path, chain_path=None, threshold=None):
        calls.append({'ca_url': ca_url, 'root': root_path, 'cert': cert_path, 'key': key_path,
                      'chain': chain_path, 'threshold': threshold})
        name = os.path.basename(cert_path).split('.')[0]
        if name in fail:
            raise FakeError('Step-CA at %s is unreachable' % ca_url)
        if name in due:
            serials[cert_path] = str(int(serials.get(cert_path, '41')) + 1)
        return name in due

    module = types.SimpleNamespace(
        StepCAError=FakeError, renew_if_needed=renew_if_needed, calls=calls, serials=serials,
        load_certificate_file=lambda path: [path],
        certificate_info=lambda cert: {'serial': serials.get(cert, '41'), 'not_after': '2030-01-01T00:00:00Z'},
        needs_renewal=lambda cert, threshold: (False, 'not due'))
    return module


@pytest.fixture
def env(tmp_path, monkeypatch):
    conf = tmp_path / 'conf'
    conf.mkdir()
    out = tmp_path / 'out'
    out.mkdir()
    state = tmp_path / 'state'
    client = {}
    serials = {}

    def write(name, hooks=(), **extra):
        data = {'name': name, 'ca_url': 'https://ca.test:9000', 'root': '/root.crt',
                'cert_path': '/certs/%s.crt' % name, 'key_path': '/certs/%s.key' % name, 'hooks': list(hooks)}
        data.update(extra)
        (conf / (name + '.json')).write_text(json.dumps(data))

    def run(*args, due=(), fail=()):
        client['module'] = fake_client(due, fail, serials)
        monkeypatch.setattr(script, 'import_client', lambda lib_dir: client['module'])
        return script.main(['--config-dir', str(conf), '--lock', str(tmp_path / 'lock'), '--state-dir', str(state)]
                           + list(args))

    def handed(name):
        path = state / (name + '.hooks.json')
        return json.loads(path.read_text())['serial'] if path.exists() else None

    return types.SimpleNamespace(conf=conf, out=out, write=write, run=run, client=client, handed=handed,
                                 serials=serials, state=state)


def test_hook_string_is_split_like_a_shell_without_a_shell():
    expected = ['pct', 'exec', '102', '--', '/bin/bash', '-c', 'a; b']
    assert script.normalize_hook("pct exec 102 -- /bin/bash -c 'a; b'") == expected
    assert script.normalize_hook(['systemctl', 'reload', 'nginx']) == ['systemctl', 'reload', 'nginx']
    assert script.normalize_hook(['docker', 'restart', 1001]) == ['docker', 'restart', '1001']
    for bad in ('', [], {'cmd': 'x'}, [['nested']]):
        with pytest.raises(script.ConfigError):
            script.normalize_hook(bad)


def test_not_due_runs_no_hook(env, capsys):
    env.write('web', hooks=[['touch', str(env.out / 'hook')]])
    env.state.mkdir()
    (env.state / 'web.hooks.json').write_text('{"serial": "41"}')              # the hooks have this certificate
    assert env.run(due=()) == 0
    assert not (env.out / 'hook').exists()
    assert 'web: not due' in capsys.readouterr().out
    call = env.client['module'].calls[0]
    assert call == {'ca_url': 'https://ca.test:9000', 'root': '/root.crt', 'cert': '/certs/web.crt',
                    'key': '/certs/web.key', 'chain': None, 'threshold': None}


def test_failed_hook_is_retried_by_the_next_run_when_not_due(env, capsys):
    """Renewed, the reload fails: the serial is not recorded, so the next run (certificate not due any more)
    runs the hooks again; once they succeed, later runs leave them alone."""
    flag = env.out / 'reload-works'
    log = env.out / 'log'
    env.write('web', hooks=[['sh', '-c', 'echo reload >> %s && test -e %s' % (log, flag)]])
    env.state.mkdir()
    (env.state / 'web.hooks.json').write_text('{"serial": "41"}')
    assert env.run(due=('web',)) == 1
    out = capsys.readouterr().out
    assert 'web: renewed' in out and 'hooks failed; the next run tries again' in out
    assert env.handed('web') == '41'

    flag.write_text('')
    assert env.run(due=()) == 0
    out = capsys.readouterr().out
    assert 'web: not due' in out and 'web: serial 42 not handed to the hooks yet (last: 41)' in out
    assert 'web: serial 42 handed to the hooks' in out
    assert env.handed('web') == '42' and log.read_text().split() == ['reload', 'reload']

    assert env.run(due=()) == 0
    assert log.read_text().split() == ['reload', 'reload']                   # nothing pending: no third reload
    assert 'handed' not in capsys.readouterr().out


def test_no_record_yet_hands_the_current_certificate_once(env):
    env.write('web', hooks=[['sh', '-c', 'echo x >> %s' % (env.out / 'log')]])
    assert env.run(due=()) == 0 and env.run(due=()) == 0
    assert (env.out / 'log').read_text().split() == ['x'] and env.handed('web') == '41'


def test_renewal_failure_still_hands_a_pending_serial(env, capsys):
    env.write('web', hooks=[['touch', str(env.out / 'hook')]])
    assert env.run(fail=('web',)) == 1
    assert (env.out / 'hook').exists() and env.handed('web') == '41'
    assert 'web: renewal failed' in capsys.readouterr().out


def test_pending_hooks_mode_runs_only_unhanded_serials_without_renewal(env, capsys):
    env.write('web', hooks=[['sh', '-c', 'echo x >> %s' % (env.out / 'log')]])
    assert env.run('--pending-hooks', 'web', due=('web',)) == 0
    assert env.client['module'].calls == [] and env.handed('web') == '41'
    assert 'web: serial 41 handed to the hooks' in capsys.readouterr().out
    assert env.run('--pending-hooks', 'web') == 0
    assert (env.out / 'log').read_text().split() == ['x'] and 'handed' not in capsys.readouterr().out


def test_renewed_runs_hooks_in_order(env, capsys):
    log = env.out / 'log'
    env.write('web', hooks=[['sh', '-c', 'echo first >> %s' % log], 'sh -c "echo second >> %s"' % log],
              chain_path='/certs/web.full.crt', renew_before='4m50s')
    assert env.run(due=('web',)) == 0
    assert log.read_text().split() == ['first', 'second']
    assert env.client['module'].calls[0]['chain'] == '/certs/web.full.crt'
    assert env.client['module'].calls[0]['threshold'] == '4m50s'
    out = capsys.readouterr().out
    assert 'web: renewed /certs/web.crt (serial 42' in out and 'web: hook sh -c' in out


def test_failed_hook_stops_the_chain_and_fails(env, capsys):
    env.write('web', hooks=[['false'], ['touch', str(env.out / 'after')]])
    assert env.run(due=('web',)) == 1
    assert not (env.out / 'after').exists()
    out = capsys.readouterr().out
    assert 'hook false failed with exit status 1' in out and 'failed: web' in out


def test_missing_hook_command_fails(env, capsys):
    env.write('web', hooks=[['/nonexistent/reload-me']])
    assert env.run(due=('web',)) == 1
    assert 'could not run' in capsys.readouterr().out


def test_hook_timeout(env, capsys):
    env.write('web', hooks=[['sleep', '5']], hook_timeout=0.2)
    assert env.run(due=('web',)) == 1
    assert 'timed out after 0.2s' in capsys.readouterr().out


def test_one_failure_does_not_stop_the_others(env, capsys):
    env.write('alpha', hooks=[['touch', str(env.out / 'alpha')]])
    env.write('beta', hooks=[['touch', str(env.out / 'beta')]])
    env.write('gamma', hooks=[['touch', str(env.out / 'gamma')]])
    env.state.mkdir()
    for name in ('alpha', 'beta', 'gamma'):
        (env.state / (name + '.hooks.json')).write_text('{"serial": "41"}')
    assert env.run(due=('alpha', 'gamma'), fail=('beta',)) == 1
    assert (env.out / 'alpha').exists() and (env.out / 'gamma').exists() and not (env.out / 'beta').exists()
    out = capsys.readouterr().out
    assert 'beta: renewal failed: Step-CA at https://ca.test:9000 is unreachable' in out and 'failed: beta' in out


def test_named_certificates_only(env):
    env.write('alpha')
    env.write('beta')
    assert env.run('beta', due=('alpha', 'beta')) == 0
    assert [c['cert'] for c in env.client['module'].calls] == ['/certs/beta.crt']


def test_hooks_mode_runs_hooks_without_renewal(env):
    env.write('web', hooks=[['sh', '-c', 'echo x >> %s' % (env.out / 'log')]])
    assert env.run('--hooks', 'web') == 0 and env.run('--hooks', 'web') == 0   # forced: every time
    assert (env.out / 'log').read_text().split() == ['x', 'x']
    assert env.client['module'].calls == [] and env.handed('web') == '41'


def test_hooks_mode_needs_names(env):
    with pytest.raises(SystemExit) as exc:
        env.run('--hooks')
    assert exc.value.code == 2


@pytest.mark.parametrize('content, message', [
    ('{not json', 'is not valid JSON'),
    ('[]', 'must hold a JSON object'),
    ('{"name": "web", "ca_url": "https://ca:9000"}', 'lacks root, cert_path, key_path'),
    ('{"name": "web", "ca_url": "u", "root": "r", "cert_path": "c", "key_path": "k", "hooks": "reload"}',
     '"hooks" must be a list'),
    ('{"name": "web", "ca_url": "u", "root": "r", "cert_path": "c", "key_path": "k", "hooks": [[]]}', 'empty hook'),
    ('{"name": "web", "ca_url": "u", "root": "r", "cert_path": "c", "key_path": "k", "hook_timeout": "soon"}',
     '"hook_timeout" must be a number'),
])
def test_bad_configuration_fails_before_any_renewal(env, capsys, content, message):
    env.write('good', hooks=[['touch', str(env.out / 'good')]])
    (env.conf / 'web.json').write_text(content)
    assert env.run(due=('good', 'web')) == 2
    assert message in capsys.readouterr().out
    assert env.client.get('module') is None or env.client['module'].calls == []
    assert not (env.out / 'good').exists()


def test_named_certificate_without_configuration(env, capsys):
    assert env.run('ghost') == 2
    assert 'cannot read' in capsys.readouterr().out


def test_no_certificates_is_fine(env, capsys):
    assert env.run() == 0
    assert 'no certificates configured' in capsys.readouterr().out


def test_name_defaults_to_file_name(env):
    (env.conf / 'api.json').write_text(json.dumps({'ca_url': 'u', 'root': 'r', 'cert_path': 'c', 'key_path': 'k'}))
    assert script.load_config(str(env.conf / 'api.json'))['name'] == 'api'


def test_list_with_the_real_client_library(tmp_path, monkeypatch, capsys):
    """--list imports the step_ca package from --lib-dir, as installed on a guest, and reads a real certificate."""
    pytest.importorskip('cryptography')
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    lib = tmp_path / 'lib'
    lib.mkdir()
    shutil.copytree(CLIENT, str(lib / 'step_ca'), ignore=shutil.ignore_patterns('__pycache__'))
    for name in [name for name in sys.modules if name == 'step_ca' or name.startswith('step_ca.')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, 'path', list(sys.path))

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'web.test')])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(4242).not_valid_before(now - datetime.timedelta(minutes=4))
            .not_valid_after(now + datetime.timedelta(minutes=1)).sign(key, hashes.SHA256()))
    (tmp_path / 'web.crt').write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    conf = tmp_path / 'conf'
    conf.mkdir()
    (conf / 'web.json').write_text(json.dumps({'ca_url': 'https://ca.test:9000', 'root': '/r',
                                               'cert_path': str(tmp_path / 'web.crt'), 'key_path': '/k'}))
    assert script.main(['--config-dir', str(conf), '--lib-dir', str(lib), '--list']) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line['name'] == 'web' and line['serial'] == '4242' and line['due'] is True
    assert sys.modules['step_ca'].__file__ == str(lib / 'step_ca' / '__init__.py')
