# -*- coding: utf-8 -*-
"""Run one module of the collection and return its result dict.

By default the module runs as Ansible runs it on a target: its own Python process, the arguments (with Ansible's
internal `_ansible_check_mode` / `_ansible_diff` keys) as JSON on stdin, the result as JSON on stdout. That skips
the ansible CLI's start (about 2 s a call: plugin loading, inventory, AnsiballZ packing), which dominated the
module tests. PHOENIX_MODULES_VIA_CLI=1 runs every call through `ansible localhost -m ...` instead;
tests/unit/test_modrun.py runs the same calls both ways and compares the results.
"""

import json
import os
import subprocess
import sys

from phoenix_testlib import REPO

BIN = os.path.dirname(sys.executable)
COLLECTIONS = os.path.join(REPO, 'collections')


def run_module(module, args, check=False, diff=True, env=None, via_cli=None):
    """The task result of thinkheads.phoenix.<module> with ``args`` (in check mode, with diff)."""
    if via_cli is None:
        via_cli = os.environ.get('PHOENIX_MODULES_VIA_CLI', '') not in ('', '0')
    if via_cli:
        return run_module_cli(module, args, check=check, diff=diff, env=env)
    return run_module_direct(module, args, check=check, diff=diff, env=env)


def run_module_cli(module, args, check=False, diff=True, env=None, module_path=None):
    """ansible localhost -c local -m thinkheads.phoenix.<module> -a <json> (-M module_path -m <module> with
    ``module_path``); returns the task result."""
    cmd = [os.path.join(BIN, 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable]
    cmd += ['-M', module_path, '-m', module] if module_path else ['-m', 'thinkheads.phoenix.%s' % module]
    if args:
        cmd += ['-a', json.dumps(args)]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
                    ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1')
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('no JSON from ansible (rc %s):\n%s\n%s' % (proc.returncode, proc.stdout, proc.stderr)) from None
    return data['plays'][0]['tasks'][0]['hosts']['localhost']


def run_module_direct(module, args, check=False, diff=True, env=None, path=None):
    """plugins/modules/<module>.py (or ``path``) in its own process, as a target runs it; returns the result as
    the CLI would."""
    params = dict(args or {}, _ansible_check_mode=bool(check), _ansible_diff=bool(diff),
                  _ansible_module_name='thinkheads.phoenix.%s' % module)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env['PYTHONPATH'] = os.pathsep.join(p for p in (COLLECTIONS, full_env.get('PYTHONPATH')) if p)
    path = path or os.path.join(REPO, 'plugins', 'modules', module + '.py')
    proc = subprocess.run([sys.executable, path], input=json.dumps({'ANSIBLE_MODULE_ARGS': params}), cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=300, check=False)
    text = proc.stdout.strip()
    try:
        result = json.loads(text.splitlines()[-1] if text else '')
    except ValueError:
        # what the controller reports for a module that printed no JSON (a traceback, a crash)
        return {'failed': True, 'changed': False, 'msg': 'MODULE FAILURE', 'rc': proc.returncode,
                'module_stdout': proc.stdout, 'module_stderr': proc.stderr}
    result.setdefault('changed', False)
    # ansible-core 2.19+ modules report warnings and deprecations as tagged summaries; the controller hands
    # tasks their messages
    result.update({key: [_message(item) if key == 'warnings' else _deprecation(item) for item in result[key]]
                   for key in ('warnings', 'deprecations') if isinstance(result.get(key), list)})
    if result.get('failed') and 'exception' not in result:
        result['exception'] = '(traceback unavailable)'
    return result


def _message(item):
    return (item.get('event') or {}).get('msg', item) if isinstance(item, dict) else item


def _deprecation(item):
    """A DeprecationSummary as the controller reports it: msg, version/date, the deprecator and its collection."""
    if not isinstance(item, dict) or 'event' not in item:
        return item
    out = {'msg': (item.get('event') or {}).get('msg')}
    out.update((key, item[key]) for key in ('version', 'date') if item.get(key) is not None)
    deprecator = item.get('deprecator')
    if isinstance(deprecator, dict):
        out['deprecator'] = {key: value for key, value in deprecator.items() if key != '__ansible_type'}
        out['collection_name'] = deprecator.get('resolved_name')
    return out
