# -*- coding: utf-8 -*-
"""file_set's services: the systemd units a set's files belong to, enabled and running after the files (change,
idempotence, check mode, diff, the refusal of a bad spec or a unit that does not exist, daemon-reload only when a
unit file of the set changed). systemctl is FAKE_SYSTEMCTL below, which keeps the units' states in a file and
records every call; the molecule scenarios and the lab run the real one."""

import json
import os
import sys

from modrun import REPO, run_module

FAKE_SYSTEMCTL = '''"""A stand-in for systemctl in the file_set tests: the units' states live in the JSON file $FAKE_SYSTEMD_STATE
({"units": {name: {LoadState, ActiveState, UnitFileState}}, "calls": [argv, ...]}); every call is recorded. It
answers `show --property=... -- UNIT...` as systemctl does (one block per unit, in the order asked; an unknown unit
is LoadState=not-found), and `daemon-reload`, `enable`, `disable`, `start`, `stop` change the recorded state."""
import json
import os
import sys

path = os.environ['FAKE_SYSTEMD_STATE']
with open(path) as handle:
    state = json.load(handle)
args = sys.argv[1:]
state['calls'].append(args)
verb, names = args[0], [a for a in args[1:] if not a.startswith('-')]
units = state['units']
if verb == 'show':
    props = [a.split('=', 1)[1] for a in args if a.startswith('--property=')][0].split(',')
    blocks = []
    for name in names:
        unit = dict({'Id': name, 'LoadState': 'not-found', 'ActiveState': 'inactive', 'UnitFileState': ''},
                    **units.get(name, {}))
        blocks.append('\\n'.join('%s=%s' % (p, unit[p]) for p in props))
    sys.stdout.write('\\n\\n'.join(blocks) + '\\n')
elif verb in ('enable', 'disable', 'start', 'stop'):
    for name in names:
        if name not in units:
            sys.stderr.write('Unit %s not found.\\n' % name)
            sys.exit(5)
        key, value = {'enable': ('UnitFileState', 'enabled'), 'disable': ('UnitFileState', 'disabled'),
                      'start': ('ActiveState', 'active'), 'stop': ('ActiveState', 'inactive')}[verb]
        units[name][key] = value
elif verb != 'daemon-reload':
    sys.stderr.write('unknown verb %s\\n' % verb)
    sys.exit(1)
with open(path, 'w') as handle:
    json.dump(state, handle)
'''


def systemd(tmp_path, units):
    """A systemctl stand-in first on PATH (FAKE_SYSTEMCTL, run by this Python) with UNITS; (state file, env)."""
    fakebin = tmp_path / 'fakebin'
    fakebin.mkdir(exist_ok=True)
    (fakebin / 'systemctl').write_text('#!%s\n%s' % (sys.executable, FAKE_SYSTEMCTL))
    (fakebin / 'systemctl').chmod(0o755)
    state = tmp_path / 'systemd.json'
    state.write_text(json.dumps({'units': units, 'calls': []}))
    env = {'PATH': str(fakebin) + os.pathsep + os.environ['PATH'], 'FAKE_SYSTEMD_STATE': str(state)}
    return state, env


def calls(state):
    return [call[0] for call in json.loads(state.read_text())['calls']]


def units(state):
    return json.loads(state.read_text())['units']


def conf(tmp_path):
    return {'files': [{'path': str(tmp_path / 'web.toml'), 'content': 'port = 80\n'}],
            'services': [{'name': 'web'}, {'name': 'web-certs.path'}]}


STOPPED = {'LoadState': 'loaded', 'ActiveState': 'inactive', 'UnitFileState': 'disabled'}


def test_enables_and_starts_then_a_second_run_reads_only(tmp_path):
    state, env = systemd(tmp_path, {'web.service': dict(STOPPED), 'web-certs.path': dict(STOPPED)})
    first = run_module('file_set', conf(tmp_path), env=env)
    assert first['changed'] is True
    assert first['service_changes'] == ['web.service: enabled', 'web-certs.path: enabled', 'web.service: started',
                                        'web-certs.path: started']
    assert calls(state) == ['show', 'enable', 'start']
    assert units(state)['web.service'] == {'LoadState': 'loaded', 'ActiveState': 'active', 'UnitFileState': 'enabled'}
    second = run_module('file_set', conf(tmp_path), env=env)
    assert second['changed'] is False and second['service_changes'] == []
    assert calls(state) == ['show', 'enable', 'start', 'show']    # one read for every unit, nothing else


def test_check_mode_changes_nothing_and_the_diff_names_each_change(tmp_path):
    state, env = systemd(tmp_path, {'web.service': dict(STOPPED, UnitFileState='enabled'),
                                    'web-certs.path': dict(STOPPED, ActiveState='active', UnitFileState='static')})
    result = run_module('file_set', conf(tmp_path), check=True, env=env)
    assert result['changed'] is True
    assert result['service_changes'] == ['web.service: started']
    assert {'before_header': 'systemd units', 'after_header': 'systemd units', 'before': '',
            'after': 'web.service: started\n'} in result['diff']
    assert calls(state) == ['show']
    assert units(state)['web.service']['ActiveState'] == 'inactive'
    assert not (tmp_path / 'web.toml').exists()


def test_stopped_and_disabled_as_asked(tmp_path):
    state, env = systemd(tmp_path, {'old.timer': {'LoadState': 'loaded', 'ActiveState': 'active',
                                                  'UnitFileState': 'enabled'}})
    args = {'services': [{'name': 'old.timer', 'enabled': False, 'state': 'stopped'}]}
    result = run_module('file_set', args, env=env)
    assert result['service_changes'] == ['old.timer: disabled', 'old.timer: stopped']
    assert calls(state) == ['show', 'disable', 'stop']
    assert run_module('file_set', args, env=env)['changed'] is False


def test_a_missing_or_masked_unit_fails_before_any_change(tmp_path):
    state, env = systemd(tmp_path, {'web.service': dict(STOPPED)})
    result = run_module('file_set', {'services': [{'name': 'web'}, {'name': 'nope.service'}]}, env=env)
    assert result['failed'] and result['msg'] == 'systemd unit nope.service not found'
    assert calls(state) == ['show']
    state, env = systemd(tmp_path, {'web.service': dict(STOPPED, LoadState='masked', UnitFileState='masked')})
    result = run_module('file_set', {'services': [{'name': 'web'}]}, env=env)
    assert result['failed'] and result['msg'] == 'systemd unit web.service is masked'
    assert calls(state) == ['show']


def test_a_bad_service_spec_is_refused_before_any_call(tmp_path):
    state, env = systemd(tmp_path, {'web.service': dict(STOPPED)})
    for spec, words in (({'name': 'web', 'state': 'restarted'}, 'must be started or stopped'),
                        ({'enabled': True}, 'name'), ({'name': 'web', 'enabled': 'maybe'}, 'enabled')):
        result = run_module('file_set', {'files': [{'path': str(tmp_path / 'x'), 'content': 'x'}],
                                         'services': [spec]}, env=env)
        assert result['failed'] and words in result['msg'], (spec, result['msg'])
    assert calls(state) == [] and not (tmp_path / 'x').exists()


class FakeModule(object):
    """What ServiceState uses of an AnsibleModule, with systemctl's answers given."""

    def __init__(self, show, check_mode=False):
        self.show, self.check_mode, self.commands = show, check_mode, []

    def get_bin_path(self, name, required=False):
        return '/bin/' + name

    def run_command(self, cmd):
        self.commands.append(cmd[1:])
        return 0, (self.show if cmd[1] == 'show' else ''), ''

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs['msg'])


def test_daemon_reload_only_when_a_unit_file_changed():
    sys.path.insert(0, os.path.join(REPO, 'collections'))
    from ansible_collections.thinkheads.phoenix.plugins.module_utils import service_state
    # blocks are matched by position: an alias is shown under its unit's Id
    assert service_state.parse_show('Id=ssh.service\nActiveState=active\n\nId=b.timer\nActiveState=inactive\n',
                                    ['sshd.service', 'b.timer']) == {
        'sshd.service': {'Id': 'ssh.service', 'ActiveState': 'active'},
        'b.timer': {'Id': 'b.timer', 'ActiveState': 'inactive'}}
    assert service_state.is_unit_file('/etc/systemd/system/web.service')
    assert service_state.is_unit_file('/lib/systemd/system/web.service.d/override.conf')
    assert not service_state.is_unit_file('/etc/web/web.toml')
    running = 'Id=web.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n'
    module = FakeModule(running)
    assert service_state.ServiceState(module, [{'name': 'web', 'enabled': True, 'state': 'started'}]).run(
        reload=True) == ['systemd: daemon-reload']
    assert module.commands == [['daemon-reload'], ['show', '--property=Id,LoadState,ActiveState,UnitFileState', '--',
                                                   'web.service']]
    module = FakeModule(running)
    assert service_state.ServiceState(module, []).run(reload=False) == [] and module.commands == []
    # check mode: a unit that does not exist yet is one this run writes (new, disabled, stopped); nothing is run but
    # the read
    module = FakeModule('Id=new.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n', check_mode=True)
    assert service_state.ServiceState(module, [{'name': 'new.service', 'enabled': True, 'state': 'started'}]).run(
        reload=True) == [
        'systemd: daemon-reload', 'new.service: enabled', 'new.service: started']
    assert [c[0] for c in module.commands] == ['show']


# -- accounts --------------------------------------------------------------------------------------------------------

FAKE_ACCOUNTS = '''
import json
import os
import sys

path = os.environ['FAKE_ACCOUNTS_STATE']
with open(path) as handle:
    state = json.load(handle)
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
state['calls'].append([tool] + args)
groups, users = state['groups'], state['users']


def option(flag):
    return args[args.index(flag) + 1] if flag in args else None


if tool == 'getent':
    table = groups if args[0] == 'group' else users
    missing = False
    for name in args[1:]:
        if name in table:
            entry = table[name]
            if args[0] == 'group':
                print('%s:x:%s:' % (name, entry['gid']))
            else:
                gid = groups[entry['group']]['gid']
                print('%s:x:%s:%s:%s:%s:%s' % (name, entry['uid'], gid, entry.get('comment', ''), entry['home'],
                                              entry['shell']))
        else:
            missing = True
    code = 2 if missing else 0
elif tool == 'groupadd':
    groups[args[-1]] = {'gid': str(900 + len(groups))}
    code = 0
elif tool in ('useradd', 'usermod'):
    name = args[-1]
    entry = users.setdefault(name, {'uid': str(800 + len(users)), 'comment': ''}) if tool == 'useradd' else users[name]
    for flag, key in (('--gid', 'group'), ('--home-dir', 'home'), ('--home', 'home'), ('--shell', 'shell'),
                      ('--comment', 'comment')):
        if option(flag) is not None:
            entry[key] = option(flag)
    code = 0
else:
    code = 1
with open(path, 'w') as handle:
    json.dump(state, handle)
sys.exit(code)
'''


def accounts_env(tmp_path, groups, users):
    fakebin = tmp_path / 'fakebin'
    fakebin.mkdir(exist_ok=True)
    (fakebin / 'accounts').write_text('#!%s\n%s' % (sys.executable, FAKE_ACCOUNTS))
    (fakebin / 'accounts').chmod(0o755)
    for tool in ('getent', 'groupadd', 'useradd', 'usermod'):
        (fakebin / tool).symlink_to(fakebin / 'accounts')
    state = tmp_path / 'accounts.json'
    state.write_text(json.dumps({'groups': groups, 'users': users, 'calls': []}))
    return state, {'PATH': str(fakebin) + os.pathsep + os.environ['PATH'], 'FAKE_ACCOUNTS_STATE': str(state)}


def account_calls(state):
    return [call[0] for call in json.loads(state.read_text())['calls']]


ACCOUNTS = {'accounts': [{'name': 'web', 'home': '/var/lib/web'},
                         {'name': 'api', 'group': 'svc', 'home': '/srv/api', 'comment': 'API server'}]}


def test_accounts_created_then_a_second_run_reads_only(tmp_path):
    state, env = accounts_env(tmp_path, {}, {})
    first = run_module('file_set', ACCOUNTS, env=env)
    assert first['changed'] is True
    assert first['account_changes'] == ['web: group created', 'web: user created', 'svc: group created',
                                        'api: user created']
    created = json.loads(state.read_text())
    assert created['users']['api'] == {'uid': '801', 'comment': 'API server', 'group': 'svc', 'home': '/srv/api',
                                       'shell': '/usr/sbin/nologin'}
    assert ['useradd', '--system', '--gid', 'web', '--home-dir', '/var/lib/web', '--no-create-home', '--shell',
            '/usr/sbin/nologin', 'web'] in created['calls']
    second = run_module('file_set', ACCOUNTS, env=env)
    assert second['changed'] is False and second['account_changes'] == []
    assert account_calls(state)[-2:] == ['getent', 'getent']    # two reads for every account, nothing else


def test_accounts_drift_is_repaired_and_check_mode_changes_nothing(tmp_path):
    groups = {'web': {'gid': '900'}, 'other': {'gid': '901'}, 'svc': {'gid': '902'}}
    users = {'web': {'uid': '800', 'group': 'other', 'home': '/var/lib/web', 'shell': '/bin/bash', 'comment': ''},
             'api': {'uid': '801', 'group': 'svc', 'home': '/srv/api', 'shell': '/usr/sbin/nologin',
                     'comment': 'API server'}}
    state, env = accounts_env(tmp_path, groups, users)
    checked = run_module('file_set', ACCOUNTS, check=True, env=env)
    assert checked['changed'] is True
    assert checked['account_changes'] == ['web: group web, shell /usr/sbin/nologin']
    assert {'before_header': 'accounts', 'after_header': 'accounts', 'before': '',
            'after': 'web: group web, shell /usr/sbin/nologin\n'} in checked['diff']
    assert account_calls(state) == ['getent', 'getent']
    fixed = run_module('file_set', ACCOUNTS, env=env)
    assert fixed['account_changes'] == checked['account_changes']
    repaired = json.loads(state.read_text())['users']['web']
    assert repaired == {'uid': '800', 'group': 'web', 'home': '/var/lib/web', 'shell': '/usr/sbin/nologin',
                        'comment': ''}
    assert run_module('file_set', ACCOUNTS, env=env)['changed'] is False


def test_a_bad_account_is_refused_before_any_call(tmp_path):
    state, env = accounts_env(tmp_path, {}, {})
    for spec, words in (({'name': 'web'}, 'home'), ({'name': 'web', 'home': 'relative'}, 'home'),
                        ({'home': '/srv/x'}, 'name'), ({'name': 'web', 'home': '/srv/x', 'shell': 'sh'}, 'shell')):
        result = run_module('file_set', {'accounts': [spec]}, env=env)
        assert result['failed'] and words in result['msg'], (spec, result['msg'])
    assert account_calls(state) == []
