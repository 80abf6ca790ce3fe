# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A controller-side module run in the task's worker (plugins/plugin_utils/in_process.py) gives the same task result
as the same module run by Ansible as a separate process (`-e phoenix_in_process=false`): success, change, check mode,
diff, failure on bad input, a crash, warnings and deprecations (also across loop items), no_log, and clean-up
functions. Each test also shows which path ran, from the plugin's -vvv line, so that a test cannot pass by running
the usual path twice."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from modrun import BIN, COLLECTIONS, REPO

IGNORED = {'action', 'invocation', '_ansible_no_log'}
IN_WORKER = 'runs in the worker process'
SEPARATE = 'runs as a separate process'


def run_cli(tool, args, collections=COLLECTIONS):
    """`ansible` or `ansible-playbook` on localhost (local connection, this Python, -vvv) with the json callback;
    (the callback's document, stdout+stderr)."""
    cmd = [os.path.join(BIN, tool), '-i', 'localhost,', '-c', 'local', '-vvv',
           '-e', 'ansible_python_interpreter=%s' % sys.executable] + list(args)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1', ANSIBLE_COLLECTIONS_PATH=collections)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return json.loads(proc.stdout[proc.stdout.find('{\n'):]), proc.stdout + proc.stderr


def ansible(args, collections=COLLECTIONS, extra=(), check=False):
    """One `ansible localhost` call; (its task result, stdout+stderr)."""
    data, output = run_cli('ansible', ['localhost'] + list(extra) + list(args) + (['--check'] if check else []),
                           collections)
    return data['plays'][0]['tasks'][0]['hosts']['localhost'], output


def on_path(args, in_process, **kwargs):
    """(task result, stdout+stderr) on the path asked for, which the plugin's -vvv line must show."""
    result, output = ansible(args, extra=['-e', 'phoenix_in_process=%s' % in_process], **kwargs)
    assert (IN_WORKER if in_process else SEPARATE) in output, output
    return result, output


def both_paths(args, **kwargs):
    """The task result through the worker and as a separate process, with the keys only the controller adds left
    out."""
    return [{k: v for k, v in on_path(args, in_process, **kwargs)[0].items() if k not in IGNORED}
            for in_process in (True, False)]


def test_the_reference_configs_validate_the_same(tmp_path):
    args = {'config_dir': os.path.join(REPO, 'etc'), 'stacks_dir': os.path.join(REPO, 'stacks')}
    worker, separate = both_paths(['-m', 'thinkheads.phoenix.phoenix_validate', '-a', json.dumps(args)])
    assert worker == separate
    assert worker['changed'] is False and worker['errors'] == [] and worker['report']


def test_a_change_its_check_mode_its_diff_and_its_idempotence_are_the_same(tmp_path):
    def call(path, in_process=None, check=False):
        args = ['-m', 'thinkheads.phoenix.file_set', '--diff',
                '-a', json.dumps({'files': [{'path': str(path), 'content': 'one\n'}]})]
        if in_process is None:
            return both_paths(args, check=check)
        return on_path(args, in_process, check=check)[0]

    # check mode: the same change and diff, nothing written
    worker, separate = call(tmp_path / 'a.conf', check=True)
    assert worker == separate and worker['changed'] is True and worker['diff']
    assert not (tmp_path / 'a.conf').exists()
    # the change, made by each path in a file of its own, then the second run unchanged
    runs = {}
    for in_process in (True, False):
        path = tmp_path / ('%s.conf' % in_process)
        runs[in_process] = [call(path, in_process), call(path, in_process)]
        assert path.read_text() == 'one\n'
        first, second = runs[in_process]
        assert first['changed'] is True and second['changed'] is False
    assert str(runs[True][0]).replace('True.conf', 'X') == str(runs[False][0]).replace('False.conf', 'X')


def test_bad_input_fails_the_same_without_a_traceback():
    worker, separate = both_paths(['-m', 'thinkheads.phoenix.proxmox_guest', '-a', json.dumps({'vmid': 5})])
    assert worker == separate
    assert worker['failed'] and 'missing required arguments' in worker['msg'] and 'Traceback' not in worker['msg']


def test_a_secret_stays_hidden_on_both_paths():
    # an unreachable loopback port: the module fails on its first call; the password is a no_log option
    args = ['-m', 'thinkheads.phoenix.portainer_stack_info', '-a', json.dumps(
        {'url': 'https://127.0.0.1:9', 'username': 'admin', 'password': 'sw0rdfish-Secret', 'api_retries': 0})]
    results = []
    for in_process in (True, False):
        result, output = on_path(args, in_process)
        assert result['failed'] and 'sw0rdfish-Secret' not in output, output
        results.append({k: v for k, v in result.items() if k not in IGNORED})
    assert results[0] == results[1]


# A collection of the test's own, with the modules the collection's own cannot show: warnings, deprecations, a
# crash and a clean-up function (atexit), each with an action plugin of the same kind as the collection's.
WARNER = '''
    #!/usr/bin/python
    import atexit
    import os
    from ansible.module_utils.basic import AnsibleModule
    module = AnsibleModule(argument_spec=dict(item=dict(type='str', default='one'), crash=dict(type='bool', default=False),
                                              marker=dict(type='path')), supports_check_mode=True)
    if module.params['marker']:
        atexit.register(lambda path: open(path, 'w').close(), module.params['marker'])
    module.warn('note for ' + module.params['item'])
    module.deprecate('old option', version='9.0.0', collection_name='phxtest.inproc')
    if module.params['crash']:
        raise RuntimeError('the module broke')
    module.exit_json(changed=not module.check_mode, diff=dict(before='a\\n', after='b\\n'), checked=module.check_mode,
                     pid=os.getpid())
'''
ACTION = '''
    from ansible_collections.thinkheads.phoenix.plugins.plugin_utils.in_process import InProcessModuleAction


    class ActionModule(InProcessModuleAction):
        pass
'''


@pytest.fixture(scope='module')
def test_collection(tmp_path_factory):
    root = tmp_path_factory.mktemp('collections')
    base = root / 'ansible_collections' / 'phxtest' / 'inproc'
    for kind, text in (('modules', WARNER), ('action', ACTION)):
        (base / 'plugins' / kind).mkdir(parents=True)
        (base / 'plugins' / kind / 'phx_warner.py').write_text(textwrap.dedent(text).lstrip())
    (base / 'galaxy.yml').write_text('namespace: phxtest\nname: inproc\nversion: 1.0.0\nreadme: README.md\nauthors: [x]\n')
    return '%s:%s' % (root, COLLECTIONS)


@pytest.mark.parametrize('check, crash', [(False, False), (True, False), (False, True)])
def test_warnings_deprecations_check_mode_diff_and_a_crash_are_the_same(test_collection, check, crash):
    args = json.dumps({'crash': crash})
    worker, separate = both_paths(['-m', 'phxtest.inproc.phx_warner', '-a', args, '--diff'],
                                  collections=test_collection, check=check)
    if crash:
        assert worker['failed'] and separate['failed']
        assert 'the module broke' in worker['msg'] and 'the module broke' in separate['msg']
        return
    assert worker['pid'] != separate['pid']
    worker.pop('pid')
    separate.pop('pid')
    assert worker == separate
    assert worker['warnings'] == ['note for one']
    assert worker['deprecations'][0]['msg'] == 'old option'
    assert worker['changed'] is (not check) and worker['checked'] is check
    assert worker['diff'] == {'before': 'a\n', 'after': 'b\n'}


def test_each_loop_item_has_only_its_own_warnings_and_clean_up_runs(test_collection, tmp_path):
    playbook = tmp_path / 'loop.yml'
    marker = tmp_path / 'cleaned'
    playbook.write_text(textwrap.dedent('''
        - hosts: localhost
          gather_facts: false
          tasks:
            - phxtest.inproc.phx_warner:
                item: "{{ item }}"
                marker: "%s"
              loop: [one, two]
    ''' % marker))
    data, output = run_cli('ansible-playbook', [str(playbook)], test_collection)
    assert output.count(IN_WORKER) == 2, output
    items = data['plays'][0]['tasks'][0]['hosts']['localhost']['results']
    assert [item['warnings'] for item in items] == [['note for one'], ['note for two']]
    assert items[0]['pid'] == items[1]['pid']   # one worker ran both items
    assert marker.exists()


def test_another_interpreter_takes_the_usual_path(tmp_path):
    # the same Python under another name is still this Python; a different executable is not
    link = tmp_path / 'python'
    link.symlink_to(sys.executable)
    args = ['-m', 'thinkheads.phoenix.phoenix_validate', '-a', json.dumps({'config_dir': os.path.join(REPO, 'etc')})]
    assert IN_WORKER in ansible(args, extra=['-e', 'ansible_python_interpreter=%s' % link])[1]
    wrapper = tmp_path / 'python-wrapper'
    wrapper.write_text('#!/bin/sh\nexec %s "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    result, output = ansible(args, extra=['-e', 'ansible_python_interpreter=%s' % wrapper])
    assert SEPARATE in output and 'not the controller' in output
    assert result.get('failed') is not True, result


def test_every_module_has_its_action_plugin():
    modules = {name[:-3] for name in os.listdir(os.path.join(REPO, 'plugins', 'modules')) if name.endswith('.py')}
    actions = {name[:-3] for name in os.listdir(os.path.join(REPO, 'plugins', 'action')) if name.endswith('.py')}
    assert modules == actions - {'__init__'}
    for name in modules:
        text = open(os.path.join(REPO, 'plugins', 'action', name + '.py')).read()
        assert 'class ActionModule(InProcessModuleAction)' in text, name


def test_preload_imports_what_a_module_imports_without_running_it(tmp_path, monkeypatch):
    """The main process imports a module's top-level imports before the workers fork (plugin_utils/in_process.py
    preload): the support code and the submodule named in a 'from ... import', also inside a try; never the module
    itself, whose code would run."""
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.thinkheads.phoenix.plugins.plugin_utils import in_process
    package = tmp_path / 'phxpreload'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'helper.py').write_text('LOADED = True\n')
    (package / 'sub.py').write_text('LOADED = True\n')
    (package / 'mod.py').write_text(textwrap.dedent('''
        open(__import__('os').environ['PHX_PRELOAD_MARK'], 'w').close()
        import json
        try:
            import phxpreload.helper
        except ImportError:
            pass
        from phxpreload import sub
        from phxpreload.helper import LOADED
        from . import nothing_relative
        raise SystemExit('the module ran')
    '''))
    mark = tmp_path / 'ran'
    monkeypatch.setenv('PHX_PRELOAD_MARK', str(mark))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv('PHOENIX_IN_PROCESS', raising=False)
    assert in_process._imported_names('phxpreload.mod') == ['json', 'phxpreload.helper', 'phxpreload',
                                                            'phxpreload.sub', 'phxpreload.helper']
    in_process.preload('phxpreload.mod')
    assert 'phxpreload.helper' in sys.modules and 'phxpreload.sub' in sys.modules
    assert 'phxpreload.mod' not in sys.modules and not mark.exists()
    # switched off with the in-process path
    monkeypatch.setenv('PHOENIX_IN_PROCESS', 'false')
    (package / 'other.py').write_text('import phxpreload.late\n')
    (package / 'late.py').write_text('')
    in_process.preload('phxpreload.other')
    assert 'phxpreload.late' not in sys.modules
