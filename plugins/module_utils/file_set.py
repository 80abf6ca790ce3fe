# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A set of directories and small files on one host, converged in one pass (the file_set module).

A role that lays down many small files (configurations, units, a library) pays one module run for the whole set
instead of one round trip per file: every path is read, compared and, where it differs, written atomically, with its
owner, group and mode. Files of a pruned directory that the set does not name are removed. Check mode reads only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import fnmatch
import os
import re
import tempfile

from ansible_collections.thinkheads.phoenix.plugins.module_utils.service_accounts import ServiceAccounts
from ansible_collections.thinkheads.phoenix.plugins.module_utils.service_state import ServiceState, is_unit_file


def _file_args(path, spec):
    return {'path': path, 'mode': spec.get('mode'), 'owner': spec.get('owner'), 'group': spec.get('group'),
            'secontext': None, 'attributes': None}


def with_lines(current, lines):
    """CURRENT (text, '' for a missing file) with each of LINES ({regexp, line}) in place: the last line that
    matches its regexp is replaced by its line; with no match, the line is appended. Other lines are kept as they
    are (the semantics of ansible.builtin.lineinfile with regexp, for several lines in one pass)."""
    text = current.splitlines()
    for entry in lines:
        pattern = re.compile(entry['regexp'])
        matches = [index for index, line in enumerate(text) if pattern.search(line)]
        if matches:
            text[matches[-1]] = entry['line']
        elif entry['line'] not in text:
            text.append(entry['line'])
    return '\n'.join(text) + '\n' if text else ''


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class FileSetManager(object):
    """Converges directories, files and pruned directories through an AnsibleModule (its check mode, its attributes
    helpers); `run()` returns the module result."""

    def __init__(self, module):
        self.module = module
        self.check = module.check_mode
        self.changed_paths, self.removed, self.diffs = [], [], []
        self.created = set()     # directories created (or, in check mode, that would be)

    def _attributes(self, path, spec):
        """Owner, group and mode of an existing PATH as SPEC says; True when something differs (was changed)."""
        if path in self.created and self.check:
            return False            # predicted only: nothing to compare yet
        diff = {'before': {'path': path}, 'after': {'path': path}}
        changed = self.module.set_fs_attributes_if_different(_file_args(path, spec), False, diff, expand=False)
        if changed and diff['before'] != diff['after']:
            self.diffs.append({'before_header': path + ' (attributes)', 'after_header': path + ' (attributes)',
                               'before': '%s\n' % _attrs_text(diff['before']),
                               'after': '%s\n' % _attrs_text(diff['after'])})
        return changed

    def directory(self, spec):
        path = spec['path']
        changed = False
        if not os.path.isdir(path):
            if os.path.lexists(path):
                self.module.fail_json(msg='%s exists and is not a directory' % path, changed_paths=self.changed_paths)
            self.diffs.append({'before_header': path, 'after_header': path, 'before': '(absent)\n',
                               'after': '(directory)\n'})
            if not self.check:
                os.makedirs(path)
            self.created.add(path)
            changed = True
        changed = self._attributes(path, spec) or changed
        if changed:
            self.changed_paths.append(path)

    def file(self, spec):
        path = spec['path']
        if spec['state'] == 'absent':
            if os.path.lexists(path):
                self._remove(path, spec['diff'])
            return
        if os.path.isdir(path):
            self.module.fail_json(msg='%s is a directory, not a file' % path, changed_paths=self.changed_paths)
        current = _read(path)
        if spec.get('lines') is not None:
            # only the named lines are managed: the rest of the file (or nothing, for a new one) is kept
            spec = dict(spec, content=with_lines('' if current is None else current.decode('utf-8', 'replace'),
                                                 spec['lines']))
        wanted = str(spec['content']).encode('utf-8')
        changed = False
        if current != wanted:
            if spec['diff']:
                self.diffs.append({'before_header': path, 'after_header': path,
                                   'before': '' if current is None else current.decode('utf-8', 'replace'),
                                   'after': str(spec['content'])})
            else:
                self.diffs.append({'before_header': path, 'after_header': path,
                                   'before': '(absent)\n' if current is None else '(content not shown)\n',
                                   'after': '(new content not shown)\n'})
            parent = os.path.dirname(path) or '.'
            if not os.path.isdir(parent) and parent not in self.created and not self.check:
                self.module.fail_json(msg='the directory of %s does not exist (name it in directories)' % path,
                                      changed_paths=self.changed_paths)
            if not self.check:
                fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=parent)
                try:
                    with os.fdopen(fd, 'wb') as handle:
                        handle.write(wanted)
                    if spec.get('validate'):
                        self._validate(path, tmp, spec['validate'])
                    self.module.atomic_move(tmp, path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            changed = True
            if current is None and self.check:
                self.changed_paths.append(path)
                return
        changed = self._attributes(path, spec) or changed
        if changed:
            self.changed_paths.append(path)

    def _validate(self, path, tmp, command):
        """Run COMMAND with %s replaced by the new content's temporary file; a failure leaves PATH as it was."""
        rc, out, err = self.module.run_command(command.replace('%s', tmp), use_unsafe_shell=False)
        if rc != 0:
            self.module.fail_json(msg='%s: the new content failed its validation (%s, rc %d): %s'
                                  % (path, command, rc, (err or out).strip()[-2000:]),
                                  changed_paths=self.changed_paths)

    def _remove(self, path, show=True):
        before = _read(path) if os.path.isfile(path) else None
        self.diffs.append({'before_header': path, 'after_header': path,
                           'before': (before.decode('utf-8', 'replace') if show and before is not None
                                      else '(present)\n'), 'after': '(absent)\n'})
        if not self.check:
            os.unlink(path)
        self.removed.append(path)

    def prune(self, spec, named):
        directory = spec['path']
        if not os.path.isdir(directory):
            return
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if path in named or name in spec['keep'] or not os.path.isfile(path) or os.path.islink(path):
                continue
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in spec['patterns']):
                self._remove(path)

    def run(self):
        params = {
            'directories': self.module.params['directories'],
            'files': [dict({'state': 'present', 'diff': True, 'content': None}, **spec)
                      for spec in self.module.params['files']],
            'prune': [dict({'patterns': ['*'], 'keep': []}, **spec) for spec in self.module.params['prune']],
        }
        for spec in params['files']:
            if not spec['diff'] and spec['content'] not in (None, ''):
                # kept out of every output of the module (the task result, its invocation), not only the diff
                self.module.no_log_values.add(str(spec['content']))
        seen = set()
        for spec in params['directories'] + params['files']:
            if spec['path'] in seen:
                self.module.fail_json(msg='%s is named twice in the set' % spec['path'])
            if not os.path.isabs(spec['path']):
                self.module.fail_json(msg='%s is not an absolute path' % spec['path'])
            seen.add(spec['path'])
        missing = [spec['path'] for spec in params['files']
                   if spec['state'] == 'present' and spec['content'] is None and spec.get('lines') is None]
        if missing:
            self.module.fail_json(msg='no content for %s (content or lines is required unless state is absent)'
                                  % ', '.join(missing))
        both = [spec['path'] for spec in params['files']
                if spec['content'] is not None and spec.get('lines') is not None]
        if both:
            self.module.fail_json(msg='content and lines both given for %s (the whole file, or some of its lines)'
                                  % ', '.join(both))
        for spec in params['files']:
            if spec.get('validate') and '%s' not in spec['validate']:
                self.module.fail_json(msg='%s: validate must name the file to check as %%s: %s'
                                      % (spec['path'], spec['validate']))
            for entry in spec.get('lines') or []:
                try:
                    re.compile(entry['regexp'])
                except re.error as exc:
                    self.module.fail_json(msg='%s: lines: regexp %r is not a regular expression (%s)'
                                          % (spec['path'], entry['regexp'], exc))
                if '\n' in entry['line']:
                    self.module.fail_json(msg='%s: lines: a line must not contain a newline: %r'
                                          % (spec['path'], entry['line']))
        # the accounts first: the directories and files below may belong to them
        account_changes = ServiceAccounts(self.module, self.module.params['accounts']).run()
        for spec in params['directories']:
            self.directory(spec)
        for spec in params['files']:
            self.file(spec)
        named = set(spec['path'] for spec in params['files'] if spec['state'] == 'present')
        for spec in params['prune']:
            self.prune(spec, named)
        # then the units these files belong to: systemd reads its unit files again when one of them changed
        touched = [path for path in self.changed_paths + self.removed if is_unit_file(path)]
        services = ServiceState(self.module, [dict({'enabled': True, 'state': 'started'}, **spec)
                                              for spec in self.module.params['services']])
        service_changes = services.run(reload=bool(touched))
        result = {'changed': bool(account_changes or self.changed_paths or self.removed or service_changes),
                  'account_changes': account_changes, 'changed_paths': self.changed_paths, 'removed': self.removed,
                  'service_changes': service_changes}
        if self.module._diff:
            for header, lines in (('accounts', account_changes), ('systemd units', service_changes)):
                if lines:
                    self.diffs.append({'before_header': header, 'after_header': header, 'before': '',
                                       'after': ''.join(line + '\n' for line in lines)})
        if self.module._diff:
            result['diff'] = self.diffs
        return result


def _attrs_text(values):
    return ' '.join('%s=%s' % (key, values[key]) for key in sorted(values) if key != 'path')
