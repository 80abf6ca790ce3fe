# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module tests' runner (tests/unit/modrun.py): a module run in its own process, as a target runs it, gives
the same task result as the same call through `ansible localhost -m ...`: success, failure, check mode and
warnings. The other module tests rely on this when they use the direct runner."""


import pytest

from modrun import run_module, run_module_cli, run_module_direct

IGNORED = {'action', 'invocation', '_ansible_no_log'}   # what only the controller adds


def both(module, args, **kwargs):
    cli = run_module(module, args, via_cli=True, **kwargs)
    direct = run_module(module, args, via_cli=False, **kwargs)
    return ({k: v for k, v in cli.items() if k not in IGNORED}, {k: v for k, v in direct.items() if k not in IGNORED})


def test_failure_on_bad_input_is_the_same():
    cli, direct = both('proxmox_guest', {'vmid': 5, 'state': 'present'})
    assert cli == direct
    assert direct['failed'] and 'missing required arguments' in direct['msg']


WARNER = """#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec=dict(fail=dict(type='bool', default=False)), supports_check_mode=True)
module.warn('first note')
module.deprecate('old option', version='9.0.0', collection_name='thinkheads.phoenix')
module.warn('second note')
if module.params['fail']:
    module.fail_json(msg='asked to fail')
changed = not module.check_mode
module.exit_json(changed=changed, diff=dict(before='a\\n', after='b\\n'), checked=module.check_mode)
"""


@pytest.mark.parametrize('check, fail', [(False, False), (True, False), (False, True)])
def test_warnings_deprecations_check_mode_and_diff_are_the_same(check, fail, tmp_path):
    (tmp_path / 'phx_warner.py').write_text(WARNER)
    args = {'fail': fail}
    cli = run_module_cli('phx_warner', args, check=check, module_path=str(tmp_path))
    direct = run_module_direct('phx_warner', args, check=check, path=str(tmp_path / 'phx_warner.py'))
    cli, direct = ({k: v for k, v in r.items() if k not in IGNORED} for r in (cli, direct))
    assert cli == direct
    assert direct['warnings'] == ['first note', 'second note']
    assert direct['deprecations'][0]['msg'] == 'old option'
    if not fail:
        assert direct['changed'] is (not check) and direct['checked'] is check
        assert direct['diff'] == {'before': 'a\n', 'after': 'b\n'}


def test_a_crash_is_reported_as_a_module_failure(tmp_path, monkeypatch):
    # a module that prints no JSON (here: an interpreter that cannot import the collection)
    result = run_module('phoenix_validate', {'config_dir': str(tmp_path)}, via_cli=False,
                        env={'PYTHONNOUSERSITE': '1', 'PYTHONPATH': '', 'PYTHONSAFEPATH': '1', 'PYTHONHOME': '/nonexistent'})
    assert result['failed'] and result['msg'] == 'MODULE FAILURE' and result['module_stderr']
