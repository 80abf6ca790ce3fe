# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired Proxmox guest configuration from a normalized Phoenix guest, and exact change detection.

Pure functions (no API access) so they are unit-tested on their own; the proxmox_guest module combines
them with the PVE client.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from urllib.parse import quote, unquote

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.features import lxc_features as feature_lxc_needs

# Keys the module owns. A managed key absent from the desired config is deleted from the guest.
LXC_MANAGED = ('hostname', 'cores', 'memory', 'swap', 'nameserver', 'searchdomain', 'onboot', 'startup', 'tags',
               'description', 'features')
QEMU_MANAGED = ('name', 'cores', 'memory', 'nameserver', 'searchdomain', 'onboot', 'startup', 'tags',
                'description', 'ciuser', 'sshkeys', 'agent')
# Keys Proxmox sets when it creates a guest (pve-container create_vm: hostname, memory, swap): managed when the
# config gives them, else left as Proxmox set them (never deleted).
PVE_CREATE_DEFAULTS = {'lxc': ('hostname', 'memory', 'swap'), 'qemu': ()}
# Indexed families the module owns entirely (every entry not desired is removed).
LXC_FAMILIES = ('net', 'mp', 'dev')
QEMU_FAMILIES = ('net', 'ipconfig')
# Property-string sub-keys Proxmox fills in by itself; their presence alone is not a change.
PVE_ADDED = {
    ('lxc', 'net'): ('type',),
    ('qemu', 'net'): (),
}
PROPERTY_STRING_KEYS = ('net', 'mp', 'dev', 'ipconfig', 'startup', 'features', 'rootfs')
NVIDIA_SHARED_DEVICES = ('/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools',
                         '/dev/nvidia-caps/nvidia-cap1', '/dev/nvidia-caps/nvidia-cap2')
LXC_FEATURE_KEYS = ('nesting', 'keyctl', 'fuse', 'mknod', 'mount', 'force_rw_sys')
_FAMILY_RE = re.compile(r'^([a-z]+)(\d+)$')
_SIZE_RE = re.compile(r'^(\d+(?:\.\d+)?)([KMGT]?)$')
# Default keys of property strings that take a bare first value.
DEFAULT_KEYS = {('lxc', 'mp'): 'volume', ('lxc', 'dev'): 'path', ('lxc', 'rootfs'): 'volume',
                ('qemu', 'scsi'): 'file', ('qemu', 'virtio'): 'file'}


class GuestSpecError(Exception):
    pass


_INT_FIELDS = ('cores', 'memory_mb', 'swap_mb', 'boot_order', 'boot_delay')


def _is_int(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.match(r'^\s*\d+\s*$', value) is not None


def _is_number(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and re.match(r'^\s*\d+(\.\d+)?\s*$', value) is not None


def guest_input_errors(guest):
    """What makes a guest dict unusable, as one-line messages (checked before any API call)."""
    if not isinstance(guest, dict):
        return ['guest must be a dict (the phoenix_guest host variable), got %s' % type(guest).__name__]
    errors = []
    for key in ('id', 'name', 'hostname', 'network'):
        if key not in guest:
            errors.append('guest is missing "%s": pass the normalized guest (phoenix_guest host variable)' % key)
    if errors:
        return errors
    if not _is_int(guest['id']):
        errors.append('guest id must be an integer, got %r' % (guest['id'],))
    if guest.get('clone_from') is not None and not _is_int(guest['clone_from']):
        errors.append('guest clone_from must be an integer (the ID of the guest to clone), got %r'
                      % (guest['clone_from'],))
    for key in _INT_FIELDS:
        if guest.get(key) is not None and not _is_int(guest[key]):
            errors.append('guest %s must be an integer, got %r' % (key, guest[key]))
    if guest.get('disk_gb') is not None and not _is_number(guest['disk_gb']):
        errors.append('guest disk_gb must be a number, got %r' % (guest['disk_gb'],))
    if not isinstance(guest['network'], dict):
        errors.append('guest network must be a dict (interface, bridge, cidr, gateway, mac, ...), got %s'
                      % type(guest['network']).__name__)
    return errors


def family_of(key):
    match = _FAMILY_RE.match(key)
    return (match.group(1), int(match.group(2))) if match else (key, None)


def parse_property_string(text, default_key=None):
    """'name=eth0,bridge=vmbr0' -> {'name': 'eth0', 'bridge': 'vmbr0'} (a bare first value goes to default_key)."""
    out = {}
    if text is None:
        return out
    for index, part in enumerate(str(text).split(',')):
        if not part:
            continue
        key, sep, value = part.partition('=')
        if not sep:
            if index == 0 and default_key:
                out[default_key] = key
                continue
            out[key] = ''
            continue
        out[key] = value
    return out


def format_property_string(values, order=(), default_key=None):
    parts = []
    if default_key and default_key in values:
        parts.append(str(values[default_key]))
    keys = [k for k in order if k in values] + sorted(k for k in values if k not in order)
    for key in keys:
        if key == default_key:
            continue
        parts.append('%s=%s' % (key, values[key]))
    return ','.join(parts)


def _bool(value):
    return 1 if value else 0


# The PVE tag that marks a guest as made (or adopted) by Phoenix; every guest the module creates or reconciles
# carries it (desired_lxc / desired_qemu put it first in tags).
OWNER_TAG = 'phoenix'


def owned(config):
    """Whether a guest config carries Phoenix's owner tag."""
    return OWNER_TAG in [t for t in re.split(r'[;, ]+', str((config or {}).get('tags') or '')) if t]


def _tags(guest):
    tags = [OWNER_TAG] + [re.sub(r'[^a-z0-9_-]', '-', f.lower()) for f in guest.get('features') or []]
    seen = []
    for tag in tags:
        if tag not in seen:
            seen.append(tag)
    return ';'.join(seen)


def _startup(guest):
    order = guest.get('boot_order')
    delay = guest.get('boot_delay')
    values = {}
    if order:
        values['order'] = str(int(order))
    if delay:
        values['up'] = str(int(delay))
    return format_property_string(values, order=('order', 'up', 'down')) or None


def _description(guest):
    return 'Managed by thinkheads.phoenix: %s (%s). Manual changes are overwritten.' % (guest['name'], guest['id'])


def gpu_devices(gpus):
    """dev[n] paths for GPU passthrough: one /dev/nvidiaN per GPU, then the shared control devices."""
    if not gpus:
        return []
    return ['/dev/nvidia%d' % gpu for gpu in gpus] + list(NVIDIA_SHARED_DEVICES)


def lxc_features(guest):
    values = {}
    for option in guest.get('pct_options') or []:
        key, sep, value = str(option).partition('=')
        if sep and key.strip() in LXC_FEATURE_KEYS:
            values[key.strip()] = value.strip()
    # what the guest's features need (the feature registry), unless pct_options sets the key itself
    for key, value in feature_lxc_needs(guest.get('features')).items():
        values.setdefault(key, value)
    return format_property_string(values, order=LXC_FEATURE_KEYS) or None


def desired_lxc(guest, gpu_passthrough=True):
    """The config keys proxmox_guest manages on an LXC, as Proxmox stores them."""
    net = guest['network']
    net0 = {'name': net.get('interface') or 'eth0', 'bridge': net.get('bridge') or 'vmbr0'}
    if net.get('dhcp'):
        net0['ip'] = 'dhcp'
    elif net.get('cidr'):
        net0['ip'] = net['cidr']
        if net.get('gateway'):
            net0['gw'] = str(net['gateway'])
    if net.get('mac'):
        net0['hwaddr'] = net['mac']
    if (guest.get('firewall') or {}).get('enabled'):
        net0['firewall'] = '1'
    config = {
        'hostname': guest['hostname'],
        'cores': int(guest.get('cores') or 1),
        'memory': int(guest.get('memory_mb') or 512),
        'onboot': _bool(guest.get('start_at_boot')),
        'tags': _tags(guest),
        'description': _description(guest),
        'net0': format_property_string(net0, order=('name', 'bridge', 'firewall', 'gw', 'hwaddr', 'ip')),
    }
    if guest.get('swap_mb') is not None:
        config['swap'] = int(guest['swap_mb'])
    if net.get('nameservers'):
        config['nameserver'] = ' '.join(net['nameservers'])
    startup = _startup(guest)
    if startup:
        config['startup'] = startup
    features = lxc_features(guest)
    if features:
        config['features'] = features
    for index, mount in enumerate(guest.get('mount_points') or []):
        values = {'mp': mount['container_path']}
        if mount.get('read_only'):
            values['ro'] = '1'
        config['mp%d' % index] = format_property_string(dict(values, volume=mount['host_path']),
                                                        order=('mp', 'ro'), default_key='volume')
    if gpu_passthrough:
        for index, path in enumerate(gpu_devices(guest.get('gpus'))):
            config['dev%d' % index] = path
    return config


def desired_qemu(guest, ssh_keys=None):
    net = guest['network']
    net0 = {'virtio': net['mac']} if net.get('mac') else {'model': 'virtio'}
    net0['bridge'] = net.get('bridge') or 'vmbr0'
    if (guest.get('firewall') or {}).get('enabled'):
        net0['firewall'] = '1'
    if net.get('dhcp'):
        ipconfig = 'ip=dhcp'
    elif net.get('cidr'):
        values = {'ip': net['cidr']}
        if net.get('gateway'):
            values['gw'] = str(net['gateway'])
        ipconfig = format_property_string(values, order=('ip', 'gw'))
    else:
        ipconfig = None
    config = {
        'name': guest['hostname'],
        'cores': int(guest.get('cores') or 1),
        'memory': int(guest.get('memory_mb') or 1024),
        'onboot': _bool(guest.get('start_at_boot')),
        'tags': _tags(guest),
        'description': _description(guest),
        'agent': '1',
        'net0': format_property_string(net0, order=('virtio', 'model', 'bridge', 'firewall')),
    }
    if ipconfig:
        config['ipconfig0'] = ipconfig
    if net.get('nameservers'):
        config['nameserver'] = ' '.join(net['nameservers'])
    startup = _startup(guest)
    if startup:
        config['startup'] = startup
    user = (guest.get('user_config') or {}).get('username')
    if user:
        config['ciuser'] = user
    keys = list(ssh_keys or []) + list((guest.get('user_config') or {}).get('ssh_authorized_keys') or [])
    if keys:
        config['sshkeys'] = '\n'.join(k.strip() for k in keys if k.strip())
    return config


_MAC_RE = re.compile(r'^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$')


def _current_mac(kind, text):
    """The MAC address in a current netN value: LXC C(hwaddr=), QEMU C(<model>=<mac>) or C(macaddr=)."""
    values = parse_property_string(text)
    if kind == 'lxc':
        return values.get('hwaddr')
    for key, value in values.items():
        if key != 'bridge' and _MAC_RE.match(value or ''):
            return value
    return None


def keep_current_macs(kind, desired, current):
    """``desired`` with the MAC of each existing NIC the config gives no MAC for.

    Proxmox picks a random MAC for a NIC written without one (LXC C(hwaddr), QEMU C(model=virtio)), so writing
    the bare form would give the guest a new MAC, and re-plug its NIC, on every run.
    """
    if not current:
        return desired
    out = dict(desired)
    for key, value in desired.items():
        family, index = family_of(key)
        if family != 'net' or index is None or key not in current:
            continue
        mac = _current_mac(kind, current[key])
        if not mac:
            continue
        values = parse_property_string(value)
        if kind == 'lxc':
            if 'hwaddr' not in values:
                values['hwaddr'] = mac
                out[key] = format_property_string(values, order=('name', 'bridge', 'firewall', 'gw', 'hwaddr', 'ip'))
        elif 'model' in values:
            model = values.pop('model')
            out[key] = format_property_string(dict(values, **{model: mac}),
                                              order=(model, 'bridge', 'firewall'))
    return out


def _canon(kind, key, value):
    """A comparable form of one config value."""
    family, _index = family_of(key)
    if key == 'sshkeys':
        return '\n'.join(sorted(line.strip() for line in unquote(str(value)).splitlines() if line.strip()))
    if key == 'tags':
        return ';'.join(sorted(t for t in re.split(r'[;, ]+', str(value)) if t))
    if key == 'nameserver':
        return ' '.join(str(value).split())
    if key == 'description':
        return str(value).rstrip('\n')
    if family in PROPERTY_STRING_KEYS or key in PROPERTY_STRING_KEYS:
        parsed = parse_property_string(value, DEFAULT_KEYS.get((kind, family)))
        return dict((k, v.upper() if k in ('hwaddr', 'virtio', 'macaddr') else v) for k, v in parsed.items())
    return str(value)


def _same(kind, key, desired, current):
    family, _index = family_of(key)
    want = _canon(kind, key, desired)
    have = _canon(kind, key, current)
    if isinstance(want, dict) and isinstance(have, dict):
        ignorable = PVE_ADDED.get((kind, family), ())
        extra = [k for k in have if k not in want and k not in ignorable]
        return not extra and all(have.get(k) == v for k, v in want.items())
    return want == have


def plan_config(kind, desired, current):
    """(changes, deletes): values to PUT and managed keys to delete so that ``current`` matches ``desired``."""
    managed = LXC_MANAGED if kind == 'lxc' else QEMU_MANAGED
    families = LXC_FAMILIES if kind == 'lxc' else QEMU_FAMILIES
    changes = {}
    for key, value in desired.items():
        if key not in current or not _same(kind, key, value, current[key]):
            changes[key] = value
    deletes = []
    for key in current:
        if key in desired or key in PVE_CREATE_DEFAULTS[kind]:
            continue
        family, index = family_of(key)
        if key in managed or (index is not None and family in families):
            deletes.append(key)
    return changes, sorted(deletes)


def encode_for_api(key, value):
    """Proxmox expects sshkeys URL-encoded (with %20 for spaces)."""
    if key == 'sshkeys':
        return quote(str(value), safe='')
    return value


def managed_view(kind, config):
    """Only the keys the module manages, for before/after diffs."""
    managed = LXC_MANAGED if kind == 'lxc' else QEMU_MANAGED
    families = LXC_FAMILIES if kind == 'lxc' else QEMU_FAMILIES
    out = {}
    for key, value in config.items():
        family, index = family_of(key)
        if key in managed or (index is not None and family in families):
            out[key] = unquote(str(value)) if key == 'sshkeys' else value
    return out


def size_in_gb(text):
    """'8G' / '8192M' / '1T' -> float GiB; None when unknown."""
    match = _SIZE_RE.match(str(text or '').strip().upper())
    if not match:
        return None
    number = float(match.group(1))
    unit = match.group(2) or 'B'
    factor = {'B': 1.0 / 1024 ** 3, 'K': 1.0 / 1024 ** 2, 'M': 1.0 / 1024, 'G': 1.0, 'T': 1024.0}[unit]
    return number * factor


def disk_size_gb(kind, config):
    """(disk key, size in GiB) of the root disk."""
    key = 'rootfs' if kind == 'lxc' else next((k for k in ('scsi0', 'virtio0', 'sata0', 'ide0') if k in config), None)
    if key is None or key not in config:
        return key, None
    values = parse_property_string(config[key], 'volume')
    return key, size_in_gb(values.get('size'))


def ostemplate_volid(template, storage='local'):
    """A template path from the configs (/mnt/.../template/cache/x.tar.zst) -> 'local:vztmpl/x.tar.zst'."""
    if not template:
        return None
    text = str(template)
    if ':' in text and not text.startswith('/'):
        return text
    return '%s:vztmpl/%s' % (storage, text.rstrip('/').rsplit('/', 1)[-1])


def config_from_pending(items):
    """(config, pending keys) from Proxmox's ``GET .../pending`` answer.

    The config is what ``GET .../config`` shows (pending values in, pending deletions out, the ``digest`` kept);
    the pending keys are those whose new value or deletion is not live yet (on a running guest, until it restarts).
    """
    config = {}
    pending = set()
    for item in items or []:
        key = item.get('key')
        if not key:
            continue
        if item.get('delete'):
            pending.add(key)
            continue
        if 'pending' in item:
            config[key] = item['pending']
            pending.add(key)
        elif 'value' in item:
            config[key] = item['value']
    return config, sorted(pending)


# What a running guest takes at once or hotplugs, for the keys this module writes (check mode predicts with it):
# pve-container src/PVE/LXC/Config.pm $LXC_FASTPLUG_OPTIONS and vmconfig_hotplug_pending; qemu-server
# src/PVE/QemuServer.pm $fast_plug_option (with the cloud-init options) and vmconfig_hotplug_pending.
_LXC_LIVE = ('hostname', 'cores', 'onboot', 'startup', 'tags', 'description', 'protection', 'memory', 'swap')
_QEMU_LIVE = ('name', 'onboot', 'startup', 'tags', 'description', 'protection', 'ciuser', 'sshkeys', 'nameserver',
              'searchdomain', 'cipassword')


def _qemu_hotplug(current):
    value = str((current or {}).get('hotplug', '1'))
    if value == '0':
        return ()
    return ('network', 'disk', 'usb') if value == '1' else tuple(re.split(r'[,;\s]+', value))


def predict_pending(kind, changes, deletes, current):
    """The keys of ``changes``/``deletes`` a running guest would keep pending until it restarts."""
    current = current or {}
    out = []
    for key in changes:
        family, index = family_of(key)
        if kind == 'lxc':
            live = key in _LXC_LIVE or family == 'net' or (family in ('mp', 'dev') and key not in current)
        else:
            features = _qemu_hotplug(current)
            live = (key in _QEMU_LIVE or family == 'ipconfig' or (family == 'net' and 'network' in features)
                    or (key == 'memory' and 'memory' in features) or (key == 'agent' and _agent_fstrim_only(
                        current.get('agent'), changes[key])))
        if not live:
            out.append(key)
    for key in deletes:
        family, index = family_of(key)
        if kind == 'lxc':
            live = key in _LXC_LIVE or (family == 'net' and index is not None and index < 10)
        else:
            live = key in _QEMU_LIVE or family == 'ipconfig' or (family == 'net' and 'network' in _qemu_hotplug(
                current))
        if not live:
            out.append(key)
    return sorted(out)


def _agent_fstrim_only(old, new):
    """A VM's agent change goes live only when the agent is on and nothing but fstrim_cloned_disks differs."""
    if not old:
        return False
    before = parse_property_string(old, 'enabled')
    after = parse_property_string(new, 'enabled')
    keys = (set(before) | set(after)) - set(['fstrim_cloned_disks'])
    return all(before.get(k) == after.get(k) for k in keys)
