# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd units a file set's files belong to, enabled and running (the file_set module's ``services``).

One ``systemctl show`` reads every unit's state; ``daemon-reload``, ``enable`` and ``start`` (or ``disable`` and
``stop``) run only for what differs, so an unchanged host pays one command for all its units. What counts as enabled
and as running is what ansible.builtin.systemd_service counts: a unit file state for which ``systemctl is-enabled``
exits 0, and an active or activating unit.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

# The unit file states for which `systemctl is-enabled` exits 0 (systemctl(1), is-enabled).
ENABLED_STATES = ('enabled', 'enabled-runtime', 'alias', 'static', 'indirect', 'generated', 'transient')
# ansible.builtin.systemd_service's is_running_service: active or activating
RUNNING_STATES = ('active', 'activating')
# Where a written or removed file is a unit file that systemd must read again (systemd.unit(5), unit search path)
UNIT_DIRS = ('/etc/systemd/system/', '/run/systemd/system/', '/lib/systemd/system/', '/usr/lib/systemd/system/')
UNIT_SUFFIXES = ('.service', '.socket', '.device', '.mount', '.automount', '.swap', '.target', '.path', '.timer',
                 '.slice', '.scope')


def run_checked(module, cmd, allowed=(0,)):
    """Run CMD through MODULE; its output, or the task failed with the command, its exit status and its output."""
    rc, out, err = module.run_command(cmd)
    if rc not in allowed:
        module.fail_json(msg='%s failed (rc %d): %s' % (' '.join(cmd), rc, (err or out).strip()),
                         rc=rc, stdout=out, stderr=err)
    return out


def unit_name(name):
    """The unit's full name: systemctl takes a bare name as a service."""
    return name if name.endswith(UNIT_SUFFIXES) else name + '.service'


def is_unit_file(path):
    return path.startswith(UNIT_DIRS)


def parse_show(text, names):
    """`systemctl show` output for NAMES (one block per unit, in the order asked, separated by an empty line) ->
    {name: {property: value}}. A block is matched by position: an alias asked for is shown under its unit's Id."""
    blocks, current = [], {}
    for line in text.splitlines() + ['']:
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, _sep, value = line.partition('=')
        current[key] = value
    if len(blocks) == len(names):
        return dict(zip(names, blocks))
    return dict((block.get('Id'), block) for block in blocks)


class ServiceState(object):
    """Converges SPECS ({name, enabled, state}) through an AnsibleModule; `run(reload)` returns the changes made
    (or that would be, in check mode) as "<unit>: <what>" lines."""

    def __init__(self, module, specs):
        self.module = module
        self.specs = [dict(spec, name=unit_name(spec['name'])) for spec in specs]
        # required for the units asked for; without any, a host with no systemd has nothing to reload
        self.systemctl = module.get_bin_path('systemctl', required=bool(self.specs))

    def _run(self, *args):
        return run_checked(self.module, [self.systemctl] + list(args))

    def run(self, reload):
        reload = reload and self.systemctl is not None
        if not self.specs and not reload:
            return []
        changes = []
        if reload:
            changes.append('systemd: daemon-reload')
            if not self.module.check_mode:
                self._run('daemon-reload')
        if not self.specs:
            return changes
        names = [spec['name'] for spec in self.specs]
        units = parse_show(self._run('show', '--property=Id,LoadState,ActiveState,UnitFileState', '--', *names), names)
        enable, disable, start, stop = [], [], [], []
        for spec in self.specs:
            name = spec['name']
            unit = units.get(name, {})
            if unit.get('LoadState', 'not-found') == 'not-found':
                if not self.module.check_mode:
                    self.module.fail_json(msg='systemd unit %s not found' % name)
                # check mode: its file is not written yet (by this task, or by an earlier one of the run)
                unit = {'UnitFileState': 'disabled', 'ActiveState': 'inactive'}
            if unit.get('LoadState') == 'masked' or unit.get('UnitFileState', '').startswith('masked'):
                self.module.fail_json(msg='systemd unit %s is masked' % name)
            enabled = unit.get('UnitFileState', '') in ENABLED_STATES
            if spec['enabled'] is not None and spec['enabled'] != enabled:
                (enable if spec['enabled'] else disable).append(name)
            running = unit.get('ActiveState', '') in RUNNING_STATES
            if spec['state'] is not None and (spec['state'] == 'started') != running:
                (start if spec['state'] == 'started' else stop).append(name)
        for verb, done, group in (('enable', 'enabled', enable), ('disable', 'disabled', disable),
                                  ('start', 'started', start), ('stop', 'stopped', stop)):
            if group:
                changes.extend('%s: %s' % (name, done) for name in group)
                if not self.module.check_mode:
                    self._run(verb, '--', *group)
        return changes
