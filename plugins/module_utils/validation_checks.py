# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The value checks behind module_utils/validation.py: single values (integers, numbers, booleans, URLs, file
modes, paths), nested values against a small schema (``shape_errors``), and the check functions that the rule
tables of module_utils/validation_rules.py name (VMIDs, SANs, SSH keys, IP addresses, users and groups)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import math
import os
import re

from urllib.parse import urlsplit

INT_MAX = 2 ** 31 - 1
WEEK = 7 * 24 * 3600

_HOST_RE = re.compile(r'^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$')
_OCTAL_MODE_RE = re.compile(r'^0?[0-7]{3,4}$')
_SYMBOLIC_MODE_RE = re.compile(r'^[ugoa]*[-+=]([rwxXstugo]*)([-+=][rwxXstugo]*)*(,[ugoa]*[-+=]([rwxXstugo]*)([-+=][rwxXstugo]*)*)*$')
_TRUE = ('1', 'true', 'yes', 'on', 'y', 't')
_FALSE = ('0', 'false', 'no', 'off', 'n', 'f')


# -- single values -------------------------------------------------------------------------------------------------

def _type_name(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, dict):
        return 'a dict'
    if isinstance(value, (list, tuple)):
        return 'a list'
    if isinstance(value, (int, float)):
        return 'a number'
    return 'a string'


def _join(where, problem):
    """'<where> <problem>', or '<where><problem>' when the problem starts with [index] or .key."""
    return '%s%s%s' % (where, '' if problem.startswith(('[', '.')) else ' ', problem)


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def is_int(value):
    """An int, or a string of digits (optionally signed); not a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and re.match(r'^\s*[-+]?\d+\s*$', value) is not None


def is_number(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def is_bool(value):
    if isinstance(value, bool) or value in (0, 1):
        return True
    return isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE


def url_errors(value, schemes=('https',), bare_host=False, default_scheme='https'):
    """Why ``value`` is not a usable URL (a list of phrases; empty when it is)."""
    if not isinstance(value, str):
        return ['must be a URL, got %s' % _type_name(value)]
    text = value.strip()
    if not text:
        return ['must be a URL, got an empty string']
    if bare_host and '://' not in text:
        text = '%s://%s' % (default_scheme, text)
    if re.search(r'\s', text):
        return ['%s is not a valid URL: it contains white space' % _short(value)]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:      # a non-numeric or out-of-range port, a broken [IPv6] literal
        return ['%s is not a valid URL: %s' % (_short(value), exc)]
    if parts.scheme not in schemes:
        return ['%s must start with %s' % (_short(value), ' or '.join('%s://' % s for s in schemes))]
    if parts.scheme == 'unix':
        if not parts.path:
            return ['%s names no socket path' % _short(value)]
        return []
    host = parts.hostname
    if not host:
        return ['%s names no host' % _short(value)]
    if '[' in parts.netloc:
        try:
            ipaddress.IPv6Address(host.split('%', 1)[0])
        except ValueError:
            return ['%s is not a valid URL: [%s] is not an IPv6 address' % (_short(value), host)]
    elif not _HOST_RE.match(host):
        return ['%s is not a valid URL: %r is not a host name' % (_short(value), host)]
    if port is not None and not 1 <= port <= 65535:
        return ['%s is not a valid URL: port %d is not between 1 and 65535' % (_short(value), port)]
    return []


def mode_errors(value):
    if isinstance(value, bool):
        return ['must be a file mode (octal such as 0644, or symbolic such as u=rw,g=r), got a boolean']
    if isinstance(value, int):
        return [] if 0 <= value <= 0o7777 else ['must be a file mode between 0 and 07777, got %d' % value]
    if not isinstance(value, str):
        return ['must be a file mode (octal such as 0644, or symbolic such as u=rw,g=r), got %s' % _type_name(value)]
    text = value.strip()
    if _OCTAL_MODE_RE.match(text) or _SYMBOLIC_MODE_RE.match(text):
        return []
    return ['must be a file mode (octal such as 0644, or symbolic such as u=rw,g=r), got %s' % _short(value)]


def path_errors(value, kind):
    if kind in (None, 'any') or not isinstance(value, str) or not value:
        return []
    if kind == 'file':
        if not os.path.exists(value):
            return ['%s does not exist' % value]
        if os.path.isdir(value):
            return ['%s is a directory, not a file' % value]
    elif kind == 'dir':
        if not os.path.isdir(value):
            return ['%s is not a directory' % value]
    elif kind == 'newdir':
        if not os.path.isdir(value) and not os.path.isdir(os.path.dirname(os.path.abspath(value))):
            return ['neither %s nor its parent directory exists' % value]
    elif kind == 'parent':
        parent = os.path.dirname(os.path.abspath(value))
        if not os.path.isdir(parent):
            return ['the directory of %s (%s) does not exist' % (value, parent)]
        if os.path.isdir(value):
            return ['%s is a directory, not a file' % value]
    return []


# -- nested shapes -------------------------------------------------------------------------------------------------

def shape_errors(where, value, shape):
    """Type errors of a nested value against a small schema, as ``'<where>.<key> must be ...'`` phrases.

    A shape is one of: ``'str'`` (text or a number), ``'int'``, ``'number'``, ``'bool'``, ``'scalar'`` (text, number
    or boolean), ``'dict'``, ``'list'``, ``'any'``; a callable returning a list of phrases; a list of one shape (a list
    whose elements have that shape); or a dict of key -> shape (a dict; keys prefixed with ``!`` are required, the
    key ``*`` applies to every other key). ``None`` is accepted for any key that is not required.
    """
    if callable(shape):
        return [_join(where, problem) for problem in shape(value)]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return ['%s must be a list, got %s' % (where, _type_name(value))]
        errors = []
        for index, item in enumerate(value):
            errors.extend(shape_errors('%s[%d]' % (where, index), item, shape[0]))
        return errors
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return ['%s must be a dict, got %s' % (where, _type_name(value))]
        errors = []
        known = set()
        for key, sub in shape.items():
            if key == '*':
                continue
            name = key.lstrip('!')
            known.add(name)
            if value.get(name) is None:
                if key.startswith('!'):
                    errors.append('%s needs "%s"' % (where, name))
                continue
            errors.extend(shape_errors('%s.%s' % (where, name), value[name], sub))
        if '*' in shape:
            for name in sorted(set(value) - known, key=str):
                if value[name] is not None:
                    errors.extend(shape_errors('%s.%s' % (where, name), value[name], shape['*']))
        return errors
    checks = {
        'str': lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool),
        'int': is_int,
        'number': is_number,
        'bool': is_bool,
        'scalar': lambda v: isinstance(v, (str, int, float, bool)),
        'dict': lambda v: isinstance(v, dict),
        'list': lambda v: isinstance(v, list),
        'any': lambda v: True,
    }
    words = {'str': 'a string', 'int': 'an integer', 'number': 'a number', 'bool': 'a boolean',
             'scalar': 'a string, number or boolean', 'dict': 'a dict', 'list': 'a list'}
    if checks[shape](value):
        return []
    return ['%s must be %s, got %s' % (where, words[shape], _short(value) if shape in ('int', 'number', 'bool')
                                       and isinstance(value, str) else _type_name(value))]


def _nonneg_int(value):
    if not is_int(value):
        return ['must be an integer, got %s' % (_short(value) if isinstance(value, str) else _type_name(value))]
    if not 0 <= int(value) <= INT_MAX:
        return ['must be between 0 and %d, got %s' % (INT_MAX, int(value))]
    return []


def _vmid(value):
    errors = _nonneg_int(value)
    if not errors and not 100 <= int(value) <= 999999999:
        errors = ['must be a guest ID between 100 and 999999999, got %s' % int(value)]
    return errors


def _nonempty_str(value):
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return ['must be a string, got %s' % _type_name(value)]
    if not str(value).strip():
        return ['must not be empty']
    return []


def _env(value):
    """Stack env: a dict of name -> scalar, or a list of {name, value}."""
    if isinstance(value, dict):
        return shape_errors('', value, {'*': 'scalar'})
    if isinstance(value, list):
        return shape_errors('', value, [{'!name': _nonempty_str, 'value': 'scalar'}])
    return ['must be a dict of names to values, or a list of {name, value}, got %s' % _type_name(value)]


def _each(check):
    """A list check from a check of one element: phrases prefixed with [index]."""
    def checker(values):
        errors = []
        for index, item in enumerate(values or []):
            errors.extend('[%d] %s' % (index, problem) for problem in check(item))
        return errors
    return checker


def _ip(value):
    try:
        ipaddress.ip_address(str(value).strip())
    except ValueError:
        return ['%s is not an IP address' % _short(value)]
    return []


_DNS_NAME_RE = re.compile(r'^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$')
_SSH_KEY_RE = re.compile(r'(^|\s)(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/]{16,}={0,3}(\s|$)')


def _san(value):
    """A certificate SAN: a DNS name (wildcards too), an IP address, an email address or a URI."""
    text = str(value).strip()
    if '://' in text or ('@' in text and ' ' not in text):
        return []
    if not _ip(text) or (len(text) <= 253 and _DNS_NAME_RE.match(text)):
        return []
    return ['%s is not a DNS name, IP address, email address or URI' % _short(value)]


def _ssh_key(value):
    if _SSH_KEY_RE.search(str(value)):
        return []
    return ['is not an SSH public key ("<type> <base64> [comment]", for example ssh-ed25519 AAAA...), got %s'
            % _short(value, 40)]


def _account(kind):
    """The name (or numeric ID) of a user or group that exists on the host the module runs on."""
    def check(value):
        text = str(value).strip()
        if text.isdigit():
            return []
        try:
            if kind == 'user':
                import pwd
                pwd.getpwnam(text)
            else:
                import grp
                grp.getgrnam(text)
        except KeyError:
            return ['%s is not a %s on this host' % (_short(text), kind)]
        except ImportError:       # pragma: no cover - not a POSIX host
            pass
        return []
    return check
