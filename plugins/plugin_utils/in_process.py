# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of the collection's controller-side modules inside the task's worker process.

The Proxmox, Portainer and Step-CA modules talk to an HTTP API and run on the controller (``delegate_to: localhost``
or ``connection: local``). Ansible runs such a module like any other: it builds an AnsiballZ zip, starts a new Python
interpreter and imports ``ansible.module_utils.basic`` and the module's support code from the zip, where nothing is
precompiled. That costs about half a CPU-second before the module does any work, on every task and every host: most
of a no-op converge's controller time and of the integration tests' (benchmarks/README.md).

Every task already runs in a worker process of its own, forked from ``ansible-playbook`` for that one task and ending
after it. When the task's target is the controller itself, with the controller's own Python, without become, async or
a task environment, the action plugin runs the module in that worker: the same arguments, JSON-encoded with the
module's serialization profile, through ansible-core's own module runner, and its printed result parsed like a
module's output. The module itself is unchanged, so what it does, returns and fails with is the same on both paths.
Everything else (another host, another interpreter, become, async, ``environment``, an ansible-core release the path
is not tested with) takes the usual path, and so does every task where the variable ``phoenix_in_process`` (default:
the environment variable ``PHOENIX_IN_PROCESS``, else true) is false.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ast
import atexit
import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys

from ansible.plugins.action import ActionBase
from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.loader import filter_loader, test_loader
from ansible.release import __version__ as ANSIBLE_CORE_VERSION
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

# The ansible-core releases whose module runner this path has been tested with (the pinned one in requirements.txt).
# Another release takes Ansible's usual path until it is tested too.
TESTED_CORE = ((2, 21),)

# The collection's modules declare no METADATA, so Ansible encodes their arguments and decodes their results with
# the 'legacy' serialization profile (ansible.executor.module_common: _DEFAULT_LEGACY_METADATA).
PROFILE = 'legacy'

try:
    from ansible.module_utils import _internal as _module_internal
    from ansible.module_utils import basic as _basic
    from ansible.module_utils._internal import _traceback
    from ansible.module_utils._internal._ansiballz import _loader
    from ansible.module_utils.common import warnings as _module_warnings
    from ansible.module_utils.common.json import Direction, get_module_encoder
    HAS_RUNNER = True
except ImportError:  # ansible-core before 2.19 has no module runner: every task takes the usual path
    HAS_RUNNER = False


def core_is_tested(version=ANSIBLE_CORE_VERSION):
    """Whether this ansible-core release is one the in-process path is tested with."""
    try:
        major_minor = tuple(int(part) for part in version.split('.')[:2])
    except ValueError:
        return False
    return HAS_RUNNER and major_minor in TESTED_CORE


def in_process_wanted():
    """The default of phoenix_in_process: the environment variable PHOENIX_IN_PROCESS, else true."""
    return boolean(os.environ.get('PHOENIX_IN_PROCESS', True), strict=False)


def preload(module_fqn):
    """Import what a module imports (its support code and libraries) into this process, once, ahead of its first task.

    ansible-playbook loads a task's action plugin in its main process before it forks the task's worker (the
    strategy asks the plugin's class whether it bypasses the host loop), so this runs there: every worker forked
    afterwards finds those imports done instead of compiling the collection's module_utils (ansible-core's
    collection loader keeps no bytecode) and importing requests or proxmoxer again. The module itself is not run
    or imported: only the modules its top-level import statements name. Nothing is imported when the in-process
    path is off, and an import that fails is left for the module's own run to report."""
    if module_fqn in _preloaded or not core_is_tested() or not in_process_wanted():
        return
    if not _preloaded:
        _load_template_plugins()    # once, with the first module
    _preloaded.add(module_fqn)
    for name in _imported_names(module_fqn):
        try:
            importlib.import_module(name)
        except (Exception, SystemExit):  # pylint: disable=broad-except  # the module's own run reports it
            display.debug('in-process preload of %s for %s failed' % (name, module_fqn))


_preloaded = set()


def _imported_names(module_fqn):
    """The absolute module names of a module's top-level import statements (also inside a top-level try), read
    from its source without running it."""
    try:
        spec = importlib.util.find_spec(module_fqn)
        source = spec.loader.get_source(module_fqn) if spec and spec.loader else None
        tree = ast.parse(source or '')
    except (Exception, SystemExit):  # pylint: disable=broad-except  # nothing to preload
        return []
    names = []
    statements = list(tree.body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, ast.Try):
            statements[:0] = node.body
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module and node.module != '__future__':
            names.append(node.module)
            # 'from package import submodule' imports the submodule too
            names.extend(node.module + '.' + alias.name for alias in node.names if _is_module(node.module, alias.name))
    return names


def _is_module(package, name):
    try:
        return importlib.util.find_spec(package + '.' + name) is not None
    except (Exception, SystemExit):  # pylint: disable=broad-except  # a name in a module, not a module
        return False


# Template plugins nearly every worker loads for itself: ansible-core's filters and tests (the first one a worker
# uses loads every file of them, with ansible.utils.encrypt and its crypt support), and the collection's filters.
_TEMPLATE_PLUGINS = ((filter_loader, 'ansible.builtin.to_json'), (test_loader, 'ansible.builtin.version'),
                     (filter_loader, 'thinkheads.phoenix.guest_firewall'))


def _load_template_plugins():
    """Load the template plugins of _TEMPLATE_PLUGINS in the process that forks the workers."""
    for loader, name in _TEMPLATE_PLUGINS:
        try:
            loader.get(name)
        except Exception:  # pylint: disable=broad-except  # a worker that uses the plugin reports the failure
            display.debug('in-process preload of %s failed' % name)


def same_python(interpreter, executable=None):
    """Whether the interpreter Ansible would start for the module is this very Python."""
    executable = executable or sys.executable
    if not interpreter or not executable:
        return False
    try:
        return os.path.samefile(interpreter, executable)
    except OSError:
        return False


class InProcessModuleAction(ActionBase):
    """Action plugin of a controller-side module: runs it in the worker when that is the same as running it."""

    _supports_check_mode = True
    _supports_async = True

    def __init_subclass__(cls, **kwargs):
        super(InProcessModuleAction, cls).__init_subclass__(**kwargs)
        preload(cls.module_fqn_of(cls.__module__))

    @staticmethod
    def module_fqn_of(action_module):
        """The module's Python name, from its action plugin's: a collection's plugins/action/X.py runs its
        plugins/modules/X.py."""
        return action_module.replace('.plugins.action.', '.plugins.modules.', 1)

    def module_fqn(self):
        return self.module_fqn_of(type(self).__module__)

    def in_process_refusal(self, task_vars):
        """Why this task must take Ansible's usual path, or None when the module may run in this worker."""
        if not core_is_tested():
            return 'ansible-core %s is not a release this path is tested with' % ANSIBLE_CORE_VERSION
        wanted = task_vars.get('phoenix_in_process', in_process_wanted())
        if not boolean(self._templar.template(wanted), strict=False):
            return 'phoenix_in_process (or PHOENIX_IN_PROCESS) is false'
        if getattr(self._connection, 'transport', None) != 'local':
            return 'the target is not the controller'
        if self._play_context.become:
            return 'become is set'
        if self._task.async_val:
            return 'the task is async'
        environment = {}
        self._compute_environment_string(environment)
        if environment:
            return 'the task sets environment variables'
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = (task_vars.get('ansible_delegated_vars') or {}).get(self._task.delegate_to) or {}
        interpreter = host_vars.get('ansible_python_interpreter')
        if interpreter is not None:
            interpreter = self._templar.template(interpreter)
        if not same_python(interpreter):
            return 'the interpreter %r is not the controller\'s own Python' % (interpreter,)
        return None

    def run(self, tmp=None, task_vars=None):
        result = super(InProcessModuleAction, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        refusal = self.in_process_refusal(task_vars)
        if refusal is None:
            display.vvv('%s runs in the worker process' % self._task.action)
            return merge_hash(result, self.run_in_process(task_vars))
        display.vvv('%s runs as a separate process: %s' % (self._task.action, refusal))
        wrap_async = self._task.async_val
        result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def run_in_process(self, task_vars):
        """Run the module here through ansible-core's module runner and parse what it prints as Ansible would."""
        module_args = self._task.args.copy()
        self._update_module_args(self._task.action, module_args, task_vars)
        encoder = get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)
        params = to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': module_args}, cls=encoder))

        stdout, stderr = io.StringIO(), io.StringIO()
        exit_functions = []
        saved = (_module_internal.is_controller, dict(_module_warnings._global_warnings),
                 dict(_module_warnings._global_deprecations), atexit.register, sys.argv)
        rc = 0
        try:
            # The module sees what it sees as a separate process: target-side module_utils (warnings collected into
            # its result instead of shown), no warnings left from an earlier loop item, and its clean-up functions
            # (atexit) run when it ends, since a worker leaves without running atexit.
            _module_internal.is_controller = False
            _module_warnings._global_warnings.clear()
            _module_warnings._global_deprecations.clear()
            _traceback._module_tracebacks_enabled_events = None
            _basic._ANSIBLE_ARGS = None
            atexit.register = _collector(exit_functions)
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                try:
                    _loader.run_module(json_params=params, profile=PROFILE, module_fqn=self.module_fqn(),
                                       modlib_path='', extensions={})
                except SystemExit as ex:
                    rc = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
                finally:
                    for function, args, kwargs in reversed(exit_functions):
                        try:
                            function(*args, **kwargs)
                        except Exception:  # an exit function's failure does not change the module's result
                            pass
        finally:
            (_module_internal.is_controller, warnings, deprecations, atexit.register, sys.argv) = saved
            _module_warnings._global_warnings.clear()
            _module_warnings._global_warnings.update(warnings)
            _module_warnings._global_deprecations.clear()
            _module_warnings._global_deprecations.update(deprecations)

        utr = self._parse_returned_data({'rc': rc, 'stdout': stdout.getvalue(), 'stderr': stderr.getvalue()}, PROFILE)
        utr.remove_internal_keys()
        return utr.as_result_dict(for_round_trip=True)


def _collector(functions):
    def register(function, *args, **kwargs):
        functions.append((function, args, kwargs))
        return function
    return register
