# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Findings produced while loading and checking the Phoenix configs.

Every finding names the file, a JSON Pointer into that file and the problem.
Errors make the configuration unusable; warnings never stop a run.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

ERROR = 'error'
WARNING = 'warning'


def pointer(*parts):
    """Build a JSON Pointer (RFC 6901) from path parts."""
    if not parts:
        return '/'
    out = []
    for part in parts:
        text = str(part).replace('~', '~0').replace('/', '~1')
        out.append(text)
    return '/' + '/'.join(out)


class Finding:
    """One problem found in the configuration."""

    __slots__ = ('severity', 'file', 'path', 'message', 'code')

    def __init__(self, severity, file, path, message, code):
        self.severity = severity
        self.file = file
        self.path = path
        self.message = message
        self.code = code

    def as_dict(self):
        return {
            'severity': self.severity,
            'file': self.file,
            'path': self.path,
            'message': self.message,
            'code': self.code,
        }

    def __str__(self):
        return '%s: %s: %s' % (self.file, self.path, self.message)

    def __repr__(self):
        return 'Finding(%r)' % (str(self),)

    def sort_key(self):
        return (self.file, self.path, self.message)


class Report:
    """Collects every finding so that all of them are reported at once."""

    def __init__(self):
        self.errors = []
        self.warnings = []

    def error(self, file, path, message, code):
        self.errors.append(Finding(ERROR, file, path, message, code))

    def warning(self, file, path, message, code):
        self.warnings.append(Finding(WARNING, file, path, message, code))

    def add(self, severity, file, path, message, code):
        if severity == ERROR:
            self.error(file, path, message, code)
        else:
            self.warning(file, path, message, code)

    @property
    def ok(self):
        return not self.errors

    def sorted_errors(self):
        return sorted(self.errors, key=Finding.sort_key)

    def sorted_warnings(self):
        return sorted(self.warnings, key=Finding.sort_key)

    def lines(self):
        """Readable report lines: a summary, then errors, then warnings."""
        out = ['Phoenix configuration: %d error(s), %d warning(s)' % (len(self.errors), len(self.warnings))]
        for finding in self.sorted_errors():
            out.append('ERROR   %s' % finding)
        for finding in self.sorted_warnings():
            out.append('WARNING %s' % finding)
        return out

    def text(self):
        return '\n'.join(self.lines())

    def as_dict(self):
        return {
            'errors': [f.as_dict() for f in self.sorted_errors()],
            'warnings': [f.as_dict() for f in self.sorted_warnings()],
        }


class PhoenixConfigError(Exception):
    """Raised when the configuration has errors; carries the full report."""

    def __init__(self, report):
        self.report = report
        super(PhoenixConfigError, self).__init__(report.text())
