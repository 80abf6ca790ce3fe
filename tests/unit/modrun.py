# -*- coding: utf-8 -*-
"""Run one module of the collection through the real ansible CLI and return its result dict."""

import json
import os
import subprocess
import sys

from phoenix_testlib import REPO

BIN = os.path.dirname(sys.executable)


def run_module(module, args, check=False, diff=True, env=None):
    """ansible localhost -c local -m thinkheads.phoenix.<module> -a <json>; returns the task result."""
    cmd = [os.path.join(BIN, 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
           '-e', 'ansible_python_interpreter=%s' % sys.executable,
           '-m', 'thinkheads.phoenix.%s' % module]
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
