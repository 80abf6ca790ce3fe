# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rule tables of module_utils/validation.py: ``COMMON_RULES`` (by option name, in every module) and
``MODULE_RULES`` (each module's own options), with the nested shapes they use (a guest, its network, firewall
rules, aliases and IP sets). Adding an option to a module that needs more than its argument spec says means one
entry here; the rule keys are described in validation.py."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import PVE_PRIVILEGES
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation_checks import (
    WEEK, _each, _env, _ip, _nonempty_str, _nonneg_int, _san, _short, _ssh_key, _vmid, mode_errors, url_errors,
)

# -- nested shapes -------------------------------------------------------------------------------------------------

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


def _abs_path(value):
    return [] if isinstance(value, str) and value.startswith('/') else ['must be an absolute path, got %s' % _short(value)]


FILE_ATTRIBUTES = {'!path': _abs_path, 'owner': _nonempty_str, 'group': _nonempty_str, 'mode': mode_errors}

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
        'routes': dict(shape={'!routes': [{'!router': 'str', '!kind': 'str', '!hosts': ['str']}], 'skipped': ['dict'],
                              'gateway': {'!id': 'int', 'ip': 'str'}, 'traefik': {'!id': 'int', 'ip': 'str'},
                              'ca': {'!id': 'int', 'ip': 'str'}, 'edges': [{'!id': 'int', 'ip': 'str'}]}),
        'dns_records': dict(shape=[{'!name': 'str', '!ip': 'str', 'source': 'str', 'primary': 'bool'}]),
        'pve_guests': dict(shape={'*': {'status': 'str', 'template': 'bool', 'type': 'str', 'name': 'str'}}),
        'firewalls': dict(shape={'*': {'changed': 'bool', 'failed': 'bool', 'skipped': 'bool', 'enabled': 'bool',
                                       'msg': 'str'}}),
        'nameservers': dict(check=_each(_ip)),
        'extra_rows': dict(shape=[{'!section': 'str', '!status': 'str', 'check': 'str', 'target': 'str',
                                   'detail': 'str'}]),
    },
    'file_set': {
        'directories': dict(shape=[FILE_ATTRIBUTES]),
        'files': dict(shape=[dict(FILE_ATTRIBUTES, content='str', diff='bool',
                                  lines=[{'!regexp': _nonempty_str, '!line': 'str'}], validate=_nonempty_str,
                                  state=lambda v: [] if v in ('present', 'absent') else [
                                      'must be present or absent, got %s' % _short(v)])]),
        'prune': dict(shape=[{'!path': _abs_path, 'patterns': [_nonempty_str], 'keep': [_nonempty_str]}]),
        'accounts': dict(shape=[{'!name': _nonempty_str, 'group': _nonempty_str, '!home': _abs_path,
                                 'shell': _abs_path, 'comment': 'str'}]),
        'services': dict(shape=[{'!name': _nonempty_str, 'enabled': 'bool',
                                 'state': lambda v: [] if v in ('started', 'stopped') else [
                                     'must be started or stopped, got %s' % _short(v)]}]),
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
