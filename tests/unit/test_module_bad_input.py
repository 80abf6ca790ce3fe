# -*- coding: utf-8 -*-
"""Every option of every module, fed wrong types and values, fails with a clear message: no exception, no request.

The modules run in process (their ``main()``, with the arguments set the way Ansible's own unit tests set them),
each from a baseline of valid arguments whose URLs point at a loopback TCP stub that counts every connection and
whose paths point into a temporary directory. For each option, each wrong value that fits its type (discovered from
the module's argument spec, so a new option or module is covered without editing this file) is merged into the
baseline, and the result must be ``failed`` with a short ``msg`` naming the option, without a traceback, and without
a single connection to the stub. Nested values of dict and list options are mutated key by key too. The cases of
issue #16 are listed explicitly at the end.
"""

import contextlib
import datetime
import importlib
import io
import json
import os
import pkgutil
import socket
import threading
import traceback

import pytest

from phoenix_testlib import REPO  # also puts the collection on sys.path

from ansible.module_utils.testing import patch_module_args
from ansible_collections.thinkheads.phoenix.plugins.module_utils import validation, validation_rules

PACKAGE = 'ansible_collections.thinkheads.phoenix.plugins.modules.'
MODULES = sorted(m.name for m in pkgutil.iter_modules([os.path.join(REPO, 'plugins', 'modules')]))
MISSING = '/nonexistent-phoenix-test/dir/file'
BAD_URLS = ['https://pve.example:abc', 'https://[::1', 'https://[::1]:70000', 'https://host:0', 'ftp://host.example',
            'https://', 'https://bad host.example', 'https://[zz::1]:8006']
SECRET = 'unit-bad-input-secret-7f3a9c'
SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIunitunitunitunitunitunitunitunit unit@test'
ENV_PREFIXES = ('PHOENIX_PVE_', 'PHOENIX_PORTAINER_')


class _Spec(Exception):
    pass


def module_spec(name):
    """(argument_spec, other AnsibleModule kwargs) of a module, read by calling its main() until AnsibleModule."""
    mod = importlib.import_module(PACKAGE + name)
    original = mod.AnsibleModule

    def capture(*_args, **kwargs):
        raise _Spec(kwargs)

    mod.AnsibleModule = capture
    kwargs = None
    try:
        mod.main()
    except _Spec as spec:
        kwargs = dict(spec.args[0])
    finally:
        mod.AnsibleModule = original
    assert kwargs is not None, '%s.main() never built its AnsibleModule' % name
    return kwargs.pop('argument_spec'), kwargs


class CountingStub:
    """A loopback TCP listener that accepts, counts and closes every connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self):
        self.sock.close()


def _certificate(path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'Unit Root CA')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    with open(path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(path + '.key', 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class Context:
    """The stub and the files the baselines point at."""

    def __init__(self, root):
        self.stub = CountingStub()
        self.url = 'https://127.0.0.1:%d' % self.stub.port
        self.root = str(root)
        self.cert = os.path.join(self.root, 'root_ca.crt')
        _certificate(self.cert)
        self.ca_json = os.path.join(self.root, 'ca.json')
        self.conf_dir = os.path.join(self.root, 'lxc')
        self.lock_dir = os.path.join(self.root, 'lock')
        for path in (self.conf_dir, self.lock_dir):
            os.makedirs(path)
        self.files = {
            'compose.yml': "services:\n  web:\n    image: nginx:1.27\n",
            'password': SECRET + '\n',
            'lxc/801.conf': 'arch: amd64\nhostname: unit\n',
            'ca.json': json.dumps({'authority': {'provisioners': []}}),
        }
        self.reset()

    def reset(self):
        for rel, text in self.files.items():
            with open(os.path.join(self.root, rel), 'w') as handle:
                handle.write(text)

    def path(self, rel):
        return os.path.join(self.root, rel)


def baseline(name, ctx):
    """Valid arguments of each module, pointing at the stub and the context's files."""
    pve = dict(api_url=ctx.url, api_token_id='root@pam!unit', api_token_secret=SECRET, api_retries=0, api_timeout=2,
               ca_file=ctx.cert, node='pve')
    portainer = dict(url=ctx.url, api_key=SECRET, api_retries=0, api_timeout=2, ca_path=ctx.cert)
    guest = {'id': 801, 'type': 'lxc', 'name': 'unit', 'hostname': 'unit',
             'network': {'interface': 'eth0', 'bridge': 'vmbr0', 'cidr': '10.0.0.5/24', 'gateway': '10.0.0.1',
                         'nameservers': ['10.0.0.1'], 'dhcp': False},
             'cores': 2, 'memory_mb': 512, 'swap_mb': 0, 'disk_gb': 8, 'features': ['docker'],
             'firewall': {'enabled': True}, 'start_at_boot': True, 'unprivileged': True, 'gpus': [0],
             'mount_points': [{'container_path': '/data', 'host_path': '/srv/data', 'read_only': False}],
             'user_config': {'username': 'unit', 'ssh_authorized_keys': [SSH_KEY]}}
    return {
        'phoenix_health': dict(
            guests=[{'id': 801, 'name': 'unit', 'hostname': 'unit', 'features': ['docker'],
                     'network': {'cidr': '127.0.0.1/8'}}],
            hypervisor={'step_ca': {'dns_name': 'ca.unit'}}, stacks={'web': {'compose': {}}}, domain='unit',
            pve_guests={'801': {'status': 'running'}}, firewalls={'801': {'changed': False}}, ca_file=ctx.cert,
            nameservers=['127.0.0.1'], dns_port=ctx.stub.port, gateway_port=ctx.stub.port, timeout=0.5, retries=0,
            concurrency=2, extra_rows=[{'section': 'dns', 'status': 'ok', 'check': 'unit'}],
            skip=list(validation_sections())),
        'phoenix_validate': dict(config_dir=os.path.join(REPO, 'etc'), stacks_dir=os.path.join(REPO, 'stacks'),
                                 environment='production'),
        'portainer_bootstrap': dict(portainer, password=SECRET, username='admin', token_file=ctx.path('token'),
                                    endpoints=[{'name': 'primary', 'type': 'agent',
                                                'url': 'tcp://127.0.0.1:%d' % ctx.stub.port}]),
        'portainer_stack': dict(portainer, name='unit', compose="services:\n  web:\n    image: nginx:1.27\n",
                                env={'GREETING': 'hello', 'COUNT': '2'}, secret_env_names=['GREETING'],
                                configs=[{'name': 'unit-conf', 'content': 'x'}], endpoint='primary', endpoint_id=1,
                                wait_timeout=5, docker_host='tcp://127.0.0.1:%d' % ctx.stub.port),
        'file_set': dict(directories=[{'path': ctx.path('set'), 'owner': 'root', 'group': 'root', 'mode': '0755'}],
                         files=[{'path': ctx.path('set/a.conf'), 'content': 'a\n', 'mode': '0644', 'diff': False}],
                         prune=[{'path': ctx.path('set'), 'patterns': ['*.conf']}]),
        'portainer_stack_info': dict(portainer, endpoint='primary', endpoint_id=1),
        'proxmox_firewall': dict(pve, vmid=801, kind='lxc', enabled=True, policy_in='DROP',
                                 rules=[{'type': 'in', 'action': 'ACCEPT', 'proto': 'tcp', 'dport': '22',
                                         'enable': True}],
                                 aliases=[{'name': 'lan', 'cidr': '10.0.0.0/24', 'comment': 'unit'}],
                                 ipsets=[{'name': 'admins', 'entries': ['10.0.0.2'], 'comment': 'unit'}]),
        'proxmox_guest': dict(pve, guest=guest, storage='local-lvm', ostemplate='local:vztmpl/debian.tar.zst',
                              clone_snapshot='base', image='local:import/unit.qcow2', image_storage='local',
                              password=SECRET, ssh_public_keys=[SSH_KEY],
                              shutdown_timeout=30, task_timeout=60),
        'proxmox_guest_info': dict(pve),
        'proxmox_privileges': dict(pve, privileges=['VM.Audit', 'Sys.Audit']),
        'proxmox_image': dict(pve, name='noble-server-cloudimg-amd64.img', storage='local', content='import',
                              image_format='qcow2', url='https://images.example/noble.img', checksum='ab' * 32,
                              checksum_algorithm='sha256', verify_certificates=True, appliance_index=True,
                              download_timeout=60, hint='set template_image_url'),
        'proxmox_lxc_raw': dict(vmid=801, conf_dir=ctx.conf_dir, lock_dir=ctx.lock_dir, lock_timeout=1,
                                lxc_options=['lxc.cgroup2.devices.allow: c 195:* rwm'],
                                id_maps=[{'type': 'uid', 'container_id': 33, 'host_id': 33, 'size': 1}]),
        'step_ca_bootstrap': dict(ca_url=ctx.url, fingerprint='ab' * 32, dest=ctx.path('bootstrap.crt'),
                                  install_in_trust_store=False, mode='0644', timeout=2, retries=0),
        'step_ca_certificate': dict(ca_url=ctx.url, root=ctx.cert, provisioner='services',
                                    provisioner_password_file=ctx.path('password'), common_name='unit.internal',
                                    sans=['unit.internal', '127.0.0.1'], lifetime='24h', renew_before='33%',
                                    cert_path=ctx.path('unit.crt'), key_path=ctx.path('unit.key'),
                                    chain_path=ctx.path('unit.chain.crt'), mode='0644', key_mode='0600', timeout=2,
                                    retries=0),
        'step_ca_certificate_info': dict(path=ctx.cert, root=ctx.cert, key_path=ctx.cert + '.key',
                                         chain_path=ctx.path('none.crt')),
        'step_ca_provisioner': dict(config=ctx.ca_json, name='acme', type='ACME', challenges=['http-01'],
                                    claims={'defaultTLSCertDuration': '24h'}, force_cn=True),
    }[name]


def validation_sections():
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.health import SECTIONS
    return SECTIONS


@pytest.fixture(scope='module')
def ctx(tmp_path_factory):
    context = Context(tmp_path_factory.mktemp('bad-input'))
    yield context
    context.stub.close()


@pytest.fixture(autouse=True)
def _no_env_fallbacks(monkeypatch):
    for key in list(os.environ):
        if key.startswith(ENV_PREFIXES):
            monkeypatch.delenv(key)


def run(name, args, check_mode=False):
    """The module's result dict; {'uncaught': traceback} when main() raised."""
    mod = importlib.import_module(PACKAGE + name)
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            mod.main()
        except SystemExit:
            pass
        except Exception:  # pylint: disable=broad-except
            return {'uncaught': traceback.format_exc()}
    text = out.getvalue().strip()
    try:
        return json.loads(text.splitlines()[-1] if text else '{}')
    except ValueError:
        return {'uncaught': 'no JSON result: %r' % text[-2000:]}


# -- wrong values ----------------------------------------------------------------------------------------------------

def _wrong_for(value):
    """Values of another type than ``value`` (a nested value of a baseline), each truly invalid for it."""
    if isinstance(value, bool):
        return ['maybe', {'x': 1}]
    if isinstance(value, int):
        return ['abc', {'x': 1}]
    if isinstance(value, float):
        return ['abc']
    if isinstance(value, str):
        return [{'x': 1}, ['x']]
    if isinstance(value, dict):
        return ['abc', [1]]
    if isinstance(value, list):
        return [5, {'x': 1}]
    return []


def _nested(label, value):
    """(label, mutated value) for each key of a dict / element of a list, recursively."""
    if isinstance(value, dict):
        for key, sub in value.items():
            for wrong in _wrong_for(sub):
                yield '%s.%s=%r' % (label, key, wrong), dict(value, **{key: wrong})
            for sub_label, sub_value in _nested('%s.%s' % (label, key), sub):
                yield sub_label, dict(value, **{key: sub_value})
    elif isinstance(value, list) and value:
        for wrong in _wrong_for(value[0]):
            yield '%s[0]=%r' % (label, wrong), [wrong] + value[1:]
        for sub_label, sub_value in _nested('%s[0]' % label, value[0]):
            yield sub_label, [sub_value] + value[1:]


def bad_values(module_name, name, spec, base_value, ctx):
    """(label, value) pairs that must each make the module fail, for one option."""
    kind = spec.get('type', 'str')
    rule = validation.rules_for(module_name, name, spec)
    out = []
    if spec.get('choices') and kind != 'list':
        out.append(('not a choice', 'bogus-choice'))
    if kind in ('str', 'path'):
        out += [('dict', {'bad-key-x': 1}), ('list', ['item-one', 'item-two'])]
        if not validation.empty_allowed(spec, rule):
            out.append(('empty', ''))
        if rule.get('url'):
            out += [('url %s' % url, url) for url in BAD_URLS]
        if rule.get('path') in ('file', 'dir', 'parent', 'newdir'):
            out.append(('missing path', MISSING))
        if rule.get('path') == 'file':
            out.append(('a directory', ctx.root))
        if rule.get('check') or rule.get('account'):
            out.append(('malformed', 'zz-not-valid'))
    elif kind in ('int', 'float'):
        out += [('text', 'abc'), ('list', [1]), ('dict', {'a': 1})]
        if kind == 'int':
            out.append(('fraction', 1.5))
        low = rule.get('gt', rule.get('min', 0 if kind == 'int' else None))
        if low is not None:
            out.append(('too small', low - 1 if 'gt' not in rule else low))
        if kind == 'int' or 'max' in rule:
            out.append(('huge', 10 ** 12))
        if kind == 'float':
            out += [('nan', 'nan'), ('inf', 'inf')]
    elif kind == 'bool':
        out += [('not a bool', 'maybe'), ('dict', {'a': 1}), ('list', [1])]
    elif kind == 'dict':
        out += [('text', 'abc'), ('list', [1, 2]), ('number', 5)]
        out += list(_nested(name, base_value)) if base_value is not None else []
    elif kind == 'list':
        out.append(('dict', {'a': 1}))
        if spec.get('elements') in ('str', 'path'):
            out += [('dict element', [{'a': 1}]), ('list element', [['x']]), ('empty element', [''])]
            if rule.get('check'):
                out.append(('malformed element', ['zz not valid!']))
            if spec.get('choices'):
                out.append(('not a choice', ['bogus-choice']))
        elif spec.get('elements') == 'dict':
            out += [('text element', ['abc']), ('number element', [5])]
            out += list(_nested(name, base_value)) if base_value else []
    elif kind == 'raw':
        out += [('dict', {'bad': {'x': 1}}), ('list', [[1]])]
        if rule.get('mode'):
            out += [('not a mode', 'rwx-nonsense'), ('huge mode', 99999)]
        else:
            out += [('number', 5), ('text', 'abc')]
            out += list(_nested(name, base_value)) if base_value is not None else []
    return out


def cases(module_name, ctx):
    spec, kwargs = module_spec(module_name)
    base = baseline(module_name, ctx)
    for name in sorted(spec):
        args = dict(base)
        for group in kwargs.get('mutually_exclusive') or []:
            if name in group:       # the bad value replaces the baseline's alternative to it
                for other in group:
                    if other != name:
                        args.pop(other, None)
        for label, value in bad_values(module_name, name, spec[name], base.get(name), ctx):
            yield name, label, dict(args, **{name: value})


def problem(result, option, connections):
    """Why a result is not a clean failure naming ``option`` (None when it is)."""
    if 'uncaught' in result:
        return 'uncaught exception:\n' + result['uncaught'][-1500:]
    if not result.get('failed'):
        return 'did not fail: %s' % json.dumps(result, default=str)[:600]
    msg = result.get('msg')
    if not isinstance(msg, str) or not msg.strip():
        return 'no msg: %r' % (result,)
    # Through the CLI, Ansible adds exception='(traceback unavailable)' to every failure that carries none.
    if result.get('exception') not in (None, '(traceback unavailable)') or 'Traceback' in msg \
            or 'MODULE FAILURE' in msg:
        return 'a traceback: %s' % msg[:600]
    if msg.count('\n') > 3 or len(msg) > 1500:
        return 'not a short message: %s' % msg[:600]
    if option not in msg:
        return 'message does not name %s: %s' % (option, msg[:600])
    if connections:
        return '%d connection(s) to the server' % connections
    return None


@pytest.mark.parametrize('module_name', MODULES)
def test_baseline_passes_validation(module_name, ctx):
    """The baselines themselves are valid: whatever happens next (the stub answers nothing), it is not a
    complaint about an option, and not an exception."""
    ctx.reset()
    result = run(module_name, baseline(module_name, ctx), check_mode=True)
    assert 'uncaught' not in result, result['uncaught']
    assert 'invalid option' not in str(result.get('msg', '')), result['msg']
    assert 'unsupported parameter' not in str(result.get('msg', '')).lower(), result['msg']


@pytest.mark.parametrize('module_name', MODULES)
def test_every_bad_value_fails_cleanly(module_name, ctx):
    ran = 0
    failures = []
    for option, label, args in cases(module_name, ctx):
        ctx.reset()
        before = ctx.stub.connections
        result = run(module_name, args)
        ran += 1
        why = problem(result, option, ctx.stub.connections - before)
        if why:
            failures.append('%s %s (%s): %s' % (module_name, option, label, why))
    print('%s: %d bad-value cases' % (module_name, ran))
    assert ran >= 10
    assert not failures, '%d of %d cases:\n%s' % (len(failures), ran, '\n'.join(failures))


def test_every_path_raw_and_url_option_has_a_rule():
    """A new path or raw option must say what it accepts (validation.MODULE_RULES or COMMON_RULES), and an option
    named like a URL must be checked as one."""
    missing = []
    for module_name in MODULES:
        spec, _kwargs = module_spec(module_name)
        for name, option in spec.items():
            rule = validation.rules_for(module_name, name, option)
            kind = option.get('type', 'str')
            if kind == 'path' and not rule.get('path'):
                missing.append('%s.%s: path rule' % (module_name, name))
            if kind == 'raw' and not (rule.get('mode') or rule.get('shape') or rule.get('check')):
                missing.append('%s.%s: raw rule' % (module_name, name))
            if (name.endswith('url') or name == 'docker_host') and not rule.get('url'):
                missing.append('%s.%s: url rule' % (module_name, name))
    assert not missing, missing


def test_case_count(ctx, capsys):
    counts = dict((module_name, sum(1 for _case in cases(module_name, ctx))) for module_name in MODULES)
    with capsys.disabled():
        print('\n%d modules, %d bad-value cases (%s)' % (
            len(MODULES), sum(counts.values()), ', '.join('%s %d' % item for item in sorted(counts.items()))))
    assert sum(counts.values()) >= 500


# -- the cases of issue #16 ---------------------------------------------------------------------------------------

def _with_guest(ctx, **changes):
    args = baseline('proxmox_guest', ctx)
    args['guest'] = dict(args['guest'], **changes)
    return args


ISSUE_CASES = [
    ('proxmox_guest', 'guest.id', lambda ctx: _with_guest(ctx, id='abc')),
    ('proxmox_guest', 'guest.clone_from', lambda ctx: _with_guest(ctx, clone_from='abc')),
    ('proxmox_guest', 'guest.cores', lambda ctx: _with_guest(ctx, cores='many')),
    ('proxmox_guest', 'guest.network', lambda ctx: _with_guest(ctx, network='eth0')),
    ('proxmox_guest', 'guest.network', lambda ctx: _with_guest(ctx, network=['eth0'])),
    ('proxmox_guest', 'api_url', lambda ctx: dict(baseline('proxmox_guest', ctx), api_url='https://pve:abc')),
    ('proxmox_guest_info', 'api_url', lambda ctx: dict(baseline('proxmox_guest_info', ctx), api_url='https://[::1')),
    ('portainer_stack', 'env', lambda ctx: dict(baseline('portainer_stack', ctx), env=5)),
    ('portainer_stack', 'url', lambda ctx: dict(baseline('portainer_stack', ctx), url='https://portainer:abc')),
    ('step_ca_certificate', 'ca_url', lambda ctx: dict(baseline('step_ca_certificate', ctx), ca_url='https://ca:abc')),
]


@pytest.mark.parametrize('module_name,option,make_args', ISSUE_CASES,
                         ids=['%s-%s-%d' % (c[0], c[1], i) for i, c in enumerate(ISSUE_CASES)])
def test_issue_16_examples(module_name, option, make_args, ctx):
    ctx.reset()
    before = ctx.stub.connections
    result = run(module_name, make_args(ctx))
    assert problem(result, option, ctx.stub.connections - before) is None, result


@pytest.mark.parametrize('authority', [
    {'provisioners': {'name': 'acme'}}, {'provisioners': 'acme'}, {'provisioners': ['acme']},
    {'provisioners': [{'name': ['acme']}]}, 'not a dict',
])
def test_step_ca_provisioner_malformed_ca_json(authority, ctx):
    with open(ctx.ca_json, 'w') as handle:
        json.dump({'authority': authority}, handle)
    result = run('step_ca_provisioner', baseline('step_ca_provisioner', ctx))
    ctx.reset()
    assert problem(result, ctx.ca_json, 0) is None, result
    assert 'provisioners' in result['msg'] or 'authority' in result['msg'], result['msg']


@pytest.mark.parametrize('tree', ['tests/fixtures/reference', '.', 'lab'])
def test_guest_shape_accepts_every_normalized_guest(tree):
    """The guest schemas (proxmox_guest, phoenix_health) accept every guest the inventory normalizes: the real
    deployment's, the documented topology's and the lab's."""
    from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
    root = os.path.join(REPO, tree)
    model = load_config(os.path.join(root, 'etc'), os.path.join(root, 'stacks'))
    guests = model.ordered_guests()
    assert guests
    for guest in guests:
        assert validation.shape_errors('guest', guest, validation_rules.GUEST) == [], guest['id']
    health = validation.MODULE_RULES['phoenix_health']['guests']['shape']
    assert validation.shape_errors('guests', guests, health) == []


def test_through_the_ansible_cli():
    """The same checks through ``ansible localhost -m`` (as in the issue): the raw arguments the check reads to tell
    a dict from a string arrive there too."""
    from modrun import run_module
    conn = dict(api_url='https://127.0.0.1:1', api_token_id='root@pam!unit', api_token_secret=SECRET)
    result = run_module('proxmox_guest_info', dict(conn, node={'a': 1}))
    assert problem(result, 'node', 0) is None, result
    assert 'node must be a string, got a dict' in result['msg']
    result = run_module('proxmox_guest', dict(conn, guest={'id': 801, 'name': 'a', 'hostname': 'a',
                                                           'network': 'eth0', 'cores': 'many'}))
    assert problem(result, 'guest.network', 0) is None, result
    assert 'guest.cores must be an integer' in result['msg']


def test_every_module_calls_check_options():
    """Each module calls check_options under its own name; the rule tables name only modules that exist."""
    for module_name in MODULES:
        with open(os.path.join(REPO, 'plugins', 'modules', module_name + '.py')) as handle:
            source = handle.read()
        assert "check_options(module, '%s')" % module_name in source, module_name
    assert set(validation.MODULE_RULES) <= set(MODULES)
    for module_name, rules in validation.MODULE_RULES.items():
        spec, _kwargs = module_spec(module_name)
        assert set(rules) <= set(spec), (module_name, sorted(set(rules) - set(spec)))
