# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The system accounts a file set's files belong to (the file_set module's ``accounts``).

A service account is a system group and a system user in it, with no login shell and a home directory that is not
created: what the roles asked of ansible.builtin.group and ansible.builtin.user (``system: true``,
``create_home: false``) in two module runs. One ``getent`` per database reads every account; ``groupadd``,
``useradd`` and ``usermod`` run only for what differs, so an unchanged host pays two commands for all of them. An
existing account keeps its IDs, as with those modules.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.thinkheads.phoenix.plugins.module_utils.service_state import run_checked

DEFAULT_SHELL = '/usr/sbin/nologin'
# the columns of getent's group and passwd databases (group(5), passwd(5))
GROUP_FIELDS = ('name', 'password', 'gid', 'members')
PASSWD_FIELDS = ('name', 'password', 'uid', 'gid', 'comment', 'home', 'shell')


def parse_getent(text, fields):
    """getent output -> {name: {field: value}} (FIELDS names the colon-separated columns)."""
    entries = {}
    for line in text.splitlines():
        parts = line.split(':')
        if len(parts) >= len(fields):
            entries[parts[0]] = dict(zip(fields, parts))
    return entries


class ServiceAccounts(object):
    """Converges SPECS ({name, group, home, shell, comment}) through an AnsibleModule; `run()` returns the changes
    made (or that would be, in check mode) as "<account>: <what>" lines."""

    def __init__(self, module, specs):
        self.module = module
        self.specs = [dict(spec, group=spec.get('group') or spec['name'], shell=spec.get('shell') or DEFAULT_SHELL)
                      for spec in specs]

    def _bin(self, name):
        return self.module.get_bin_path(name, required=True)

    def _run(self, cmd, allowed=(0,)):
        return run_checked(self.module, cmd, allowed)

    def _getent(self, database, names, fields):
        # getent exits 2 when one of the keys is not found: the others are still printed
        return parse_getent(self._run([self._bin('getent'), database] + sorted(set(names)), allowed=(0, 2)), fields)

    def run(self):
        if not self.specs:
            return []
        groups = self._getent('group', [spec['group'] for spec in self.specs], GROUP_FIELDS)
        users = self._getent('passwd', [spec['name'] for spec in self.specs], PASSWD_FIELDS)
        changes = []
        for spec in self.specs:
            if spec['group'] not in groups:
                changes.append('%s: group created' % spec['group'])
                if not self.module.check_mode:
                    self._run([self._bin('groupadd'), '--system', spec['group']])
                    groups.update(self._getent('group', [spec['group']], GROUP_FIELDS))
                else:
                    groups[spec['group']] = {'gid': None}    # predicted
            user = users.get(spec['name'])
            if user is None:
                cmd = [self._bin('useradd'), '--system', '--gid', spec['group'], '--home-dir', spec['home'],
                       '--no-create-home', '--shell', spec['shell']]
                if spec.get('comment') is not None:
                    cmd += ['--comment', spec['comment']]
                changes.append('%s: user created' % spec['name'])
                if not self.module.check_mode:
                    self._run(cmd + [spec['name']])
                continue
            options, what = [], []
            if groups[spec['group']]['gid'] != user['gid']:
                options += ['--gid', spec['group']]
                what.append('group %s' % spec['group'])
            for key, flag in (('home', '--home'), ('shell', '--shell'), ('comment', '--comment')):
                if spec.get(key) is not None and spec[key] != user[key]:
                    options += [flag, spec[key]]
                    what.append('%s %s' % (key, spec[key]))
            if options:
                changes.append('%s: %s' % (spec['name'], ', '.join(what)))
                if not self.module.check_mode:
                    self._run([self._bin('usermod')] + options + [spec['name']])
        return changes
