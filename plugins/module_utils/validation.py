# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of module options that an argument spec cannot express, run right after ``AnsibleModule(...)``.

Every module of the collection calls ``check_options(module, '<module name>')`` before it reads a file, opens a
connection or sends a request. A bad value then fails the module with one message naming each bad option, instead
of an exception from deep inside a client library ("Module failed: ..."):

- ``str``/``path`` options and the ``str`` elements of lists: the value as given must be text or a number, not a
  dict or a list (Ansible would silently turn ``{'a': 1}`` into the string ``"{'a': 1}"``); an empty string is
  refused where the option is required, has a non-empty default, or is marked ``empty=False`` below.
- ``int``/``float`` options: bounded (``min``/``max``/``gt``); by default a non-negative 32-bit number, ports
  1-65535, timeouts at most a week, retries at most 100; floats finite.
- URLs (``url`` rule): parseable, one of the allowed schemes, a host name or a valid IPv4/[IPv6] literal, a port
  1-65535 when one is given.
- Paths (``path`` rule): ``file`` must be an existing file, ``dir`` an existing directory, ``parent`` a path whose
  directory exists (files the module writes), ``newdir`` a directory that exists or can be made in an existing
  one; ``any`` is not checked.
- File modes (``mode`` rule): octal (``'0644'``, ``420``) or symbolic (``u=rw,g=r``); owners and groups
  (``account`` rule) exist on the host (not looked up in check mode).
- Anything else (``check`` rule): a function of the value returning phrases (SANs, SSH keys, nameserver IPs, ...).
- Nested values of ``dict`` options and of ``list`` elements (``shape`` rule): a small schema (see ``shape_errors``)
  checking the type of each known key; unknown keys are left alone.

``MODULE_RULES`` holds each module's table; ``COMMON_RULES`` applies by option name to every module. The unit test
tests/unit/test_module_bad_input.py feeds wrong values to every option of every module and expects this module's message.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import math
import os
import re

from urllib.parse import urlsplit

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import PVE_PRIVILEGES

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


NETWORK = {'interface': 'str', 'bridge': 'str', 'dhcp': 'bool', 'cidr': 'str', 'ip': 'str', 'gateway': 'str',
           'mac': 'str', 'nameservers': ['str'], 'vlan': 'int'}
GUEST = {
    '!id': _vmid, '!name': _nonempty_str, '!hostname': _nonempty_str, '!network': NETWORK,
    'type': 'str', 'clone_from': _vmid, 'cores': _nonneg_int, 'memory_mb': _nonneg_int, 'swap_mb': _nonneg_int,
    'boot_order': _nonneg_int, 'boot_delay': _nonneg_int, 'disk_gb': 'number', 'storage_pool': 'str',
    'template': 'str', 'template_image': 'str', 'template_image_format': 'str', 'template_snapshot_name': 'str',
    'features': ['str'], 'firewall': {'enabled': 'bool'}, 'gpus': ['int'], 'pct_options': ['str'],
    'mount_points': [{'!container_path': 'str', '!host_path': 'str', 'read_only': 'bool'}],
    'start_at_boot': 'bool', 'unprivileged': 'bool', 'is_template': 'bool',
    'user_config': {'username': 'str', 'ssh_authorized_keys': [_ssh_key]},
}
FIREWALL_RULE = {'enable': 'bool', 'enabled': 'bool', '*': 'scalar'}
FIREWALL_ALIAS = {'!name': _nonempty_str, '!cidr': _nonempty_str, 'comment': 'str'}
FIREWALL_IPSET = {'!name': _nonempty_str, 'comment': 'str', 'entries': ['str']}

# -- the tables ----------------------------------------------------------------------------------------------------

URL_PVE = dict(url=dict(schemes=('https',), bare_host=True))
TIMEOUT = dict(min=1, max=WEEK)
WAIT = dict(min=0, max=WEEK)
RETRIES = dict(min=0, max=100)

# By option name, in every module (a module's own table overrides an entry).
COMMON_RULES = {
    'api_timeout': TIMEOUT, 'timeout': dict(gt=0, max=WEEK), 'task_timeout': TIMEOUT, 'wait_timeout': WAIT,
    'shutdown_timeout': WAIT, 'lock_timeout': WAIT, 'api_retries': RETRIES, 'retries': RETRIES,
    'vmid': dict(min=100, max=999999999), 'endpoint_id': dict(min=1), 'concurrency': dict(min=1, max=1024),
    'ca_file': dict(path='file'), 'ca_path': dict(path='file'), 'mode': dict(mode=True), 'key_mode': dict(mode=True),
}

MODULE_RULES = {
    'phoenix_health': {
        'guests': dict(shape=[{'!id': _vmid, 'name': 'str', 'hostname': 'str', 'network': NETWORK,
                               'features': ['str']}]),
        'hypervisor': dict(shape={'step_ca': {'dns_name': 'str', 'ip': 'str', 'port': 'int'}}),
        'stacks': dict(shape={'*': {'compose': 'dict', 'name': 'str'}}),
        'pve_guests': dict(shape={'*': {'status': 'str', 'template': 'bool', 'type': 'str', 'name': 'str'}}),
        'firewalls': dict(shape={'*': {'changed': 'bool', 'failed': 'bool', 'skipped': 'bool', 'enabled': 'bool',
                                       'msg': 'str'}}),
        'nameservers': dict(check=_each(_ip)),
        'extra_rows': dict(shape=[{'!section': 'str', '!status': 'str', 'check': 'str', 'target': 'str',
                                   'detail': 'str'}]),
    },
    'phoenix_validate': {'config_dir': dict(path='dir'), 'stacks_dir': dict(path='dir')},
    'portainer_bootstrap': {
        'url': dict(url=dict(schemes=('https', 'http'))),
        'token_file': dict(path='any'),        # the module makes its directory
        'endpoints': dict(shape=[{'!name': _nonempty_str, 'type': 'str', 'tls': 'bool', 'tls_skip_verify': 'bool',
                                  'group_id': 'int',
                                  'url': lambda v: url_errors(v, schemes=('tcp', 'unix', 'https', 'http'))}]),
    },
    'portainer_stack': {
        'url': dict(url=dict(schemes=('https', 'http'))), 'compose_file': dict(path='file'),
        'compose': dict(empty=False), 'env': dict(shape=_env),
        'configs': dict(shape=[{'!name': _nonempty_str, '!content': 'str'}]),
        'docker_host': dict(url=dict(schemes=('unix', 'tcp', 'http'))),   # what DockerApi can speak
    },
    'portainer_stack_info': {'url': dict(url=dict(schemes=('https', 'http')))},
    'proxmox_firewall': {
        'api_url': URL_PVE, 'rules': dict(shape=[FIREWALL_RULE]), 'aliases': dict(shape=[FIREWALL_ALIAS]),
        'ipsets': dict(shape=[FIREWALL_IPSET]),
    },
    'proxmox_guest': {'api_url': URL_PVE, 'ssh_public_keys': dict(check=_each(_ssh_key)),
                      'guest': dict(shape=GUEST, hint='pass the normalized guest: the phoenix_guest host variable')},
    'proxmox_guest_info': {'api_url': URL_PVE},
    'proxmox_privileges': {
        'api_url': URL_PVE,
        'privileges': dict(check=_each(lambda v: [] if str(v) in PVE_PRIVILEGES else [
            'is not a Proxmox VE privilege: %s (for example VM.Allocate, Datastore.Audit, Sys.Audit)' % _short(v)])),
    },
    'proxmox_image': {'api_url': URL_PVE, 'url': dict(url=dict(schemes=('https', 'http'))),
                      'download_timeout': TIMEOUT},
    'proxmox_lxc_raw': {
        'conf_dir': dict(path='dir', hint='set conf_dir to where Proxmox keeps the container configs (/etc/pve/lxc '
                                          'on the Proxmox host)'),
        'pve_dir': dict(path='any'),        # the module names the node directory it needs when that is missing
        'lock_dir': dict(path='newdir'),
        'id_maps': dict(shape=[{'!type': lambda v: [] if v in ('uid', 'gid') else ['must be uid or gid, got %s'
                                                                                   % _short(v)],
                                '!container_id': _nonneg_int, '!host_id': _nonneg_int, 'size': _nonneg_int}]),
    },
    'step_ca_bootstrap': {
        'ca_url': dict(url=dict(schemes=('https',))), 'dest': dict(path='parent'),
        'owner': dict(account='user'), 'group': dict(account='group'),
        'fingerprint': dict(check=lambda v: [] if re.match(r'^[0-9a-f]{64}$', re.sub(r'[\s:\-]', '', str(v)).lower())
                            else ['must be the SHA-256 fingerprint of the root certificate (64 hex digits)']),
    },
    'step_ca_certificate': {
        'ca_url': dict(url=dict(schemes=('https',))), 'root': dict(path='file'),
        'provisioner_password_file': dict(path='file'), 'cert_path': dict(path='parent'),
        'key_path': dict(path='parent'), 'chain_path': dict(path='parent'),
        'provisioner': dict(empty=False), 'common_name': dict(empty=False), 'sans': dict(check=_each(_san)),
        'owner': dict(account='user'), 'group': dict(account='group'),
        'lock_file': dict(path='any'),      # no lock (a warning) when its directory does not exist
    },
    'step_ca_certificate_info': {
        'path': dict(path='any'), 'root': dict(path='file'), 'key_path': dict(path='file'), 'chain_path': dict(path='any'),
    },
    'step_ca_provisioner': {
        'config': dict(path='file'), 'claims': dict(shape={'*': 'scalar'}),
    },
}


def rules_for(module_name, name, spec):
    """The rule dict of one option: COMMON_RULES by name, then the module's table, then defaults from the spec."""
    rule = {}
    if spec.get('type') == 'int' and (name.endswith('_port') or name == 'port'):
        rule.update(min=1, max=65535)
    rule.update(COMMON_RULES.get(name, {}))
    rule.update(MODULE_RULES.get(module_name, {}).get(name, {}))
    return rule


def empty_allowed(spec, rule):
    """Whether an empty string is an acceptable value of a str/path option."""
    if 'empty' in rule:
        return rule['empty']
    if spec.get('required'):
        return False
    default = spec.get('default')
    return default is None or default == ''


def _raw_params():
    """The module arguments as given, before Ansible's type conversion (which turns a dict into a string)."""
    try:
        from ansible.module_utils.basic import _load_params
        params = _load_params()
    except Exception:  # pylint: disable=broad-except
        return {}
    return params if isinstance(params, dict) else {}


def _number_errors(value, rule, kind):
    if kind == 'float' and not math.isfinite(value):
        return ['must be a finite number, got %s' % value]
    default_min, default_max = (0, INT_MAX) if kind == 'int' else (None, None)
    low = rule.get('min', default_min)
    high = rule.get('max', default_max)
    if 'gt' in rule and not value > rule['gt']:
        return ['must be greater than %s, got %s' % (rule['gt'], value)]
    if low is not None and value < low:
        return ['must be at least %s, got %s' % (low, value)]
    if high is not None and value > high:
        return ['must be at most %s, got %s' % (high, value)]
    return []


def option_errors(module_name, argument_spec, params, raw=None, check_mode=False):
    """Every problem of the module's parameters, as ``'<option> ...'`` phrases (empty when all are usable).

    Users and groups (``account`` rules) are not looked up in check mode: an earlier task of the same run may be
    about to create them."""
    raw = raw or {}
    errors = []
    for name in sorted(argument_spec):
        spec = argument_spec[name]
        value = params.get(name)
        if value is None:
            continue
        rule = rules_for(module_name, name, spec)
        kind = spec.get('type', 'str')
        given = raw.get(name, value)
        problems = []
        if kind in ('str', 'path'):
            if isinstance(given, (dict, list, tuple)):
                problems.append('must be a string, got %s' % _type_name(given))
            elif not str(value).strip() and not empty_allowed(spec, rule):
                problems.append('must not be empty')
            elif rule.get('url'):
                problems.extend(url_errors(value, **rule['url']))
            elif kind == 'path':
                problems.extend(path_errors(value, rule.get('path')))
        elif kind in ('int', 'float'):
            problems.extend(_number_errors(value, rule, kind))
        elif kind == 'list' and spec.get('elements') in ('str', 'path'):
            for index, item in enumerate(given if isinstance(given, list) else value):
                if isinstance(item, (dict, list, tuple)):
                    problems.append('[%d] must be a string, got %s' % (index, _type_name(item)))
                elif item is None or not str(item).strip():
                    problems.append('[%d] must not be empty' % index)
        if not problems and rule.get('mode'):
            problems.extend(mode_errors(value))
        if not problems and rule.get('check'):
            problems.extend(rule['check'](value))
        if not problems and rule.get('account') and not check_mode:
            problems.extend(_account(rule['account'])(value))
        if problems and rule.get('hint'):
            problems[-1] += ' (%s)' % rule['hint']
        errors.extend(_join(name, problem) for problem in problems)
        if not problems and rule.get('shape') is not None:
            shaped = shape_errors(name, value, rule['shape'])
            if shaped and rule.get('hint'):
                shaped[-1] += ' (%s)' % rule['hint']
            errors.extend(shaped)
    return errors


def check_options(module, module_name):
    """Fail ``module`` with one message naming every bad option; return when all are usable."""
    errors = option_errors(module_name, module.argument_spec, module.params, _raw_params(), module.check_mode)
    if errors:
        module.fail_json(msg='invalid option%s: %s' % ('s' if len(errors) > 1 else '', '; '.join(errors)))
