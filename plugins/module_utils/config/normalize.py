# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning raw config values into the normalized model's values.

Each helper takes the raw value plus where it came from (file name, JSON path
parts) and the report; it records a finding for bad input and returns the
normalized value (or None when the value is unusable).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import pointer

FIREWALL_TYPES = ('in', 'out', 'group', 'forward')
FIREWALL_ACTIONS = ('ACCEPT', 'DROP', 'REJECT')
FIREWALL_LOG_LEVELS = ('emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug', 'nolog')
# Protocol names Proxmox VE accepts (from /etc/protocols), plus numbers 0-255.
FIREWALL_PROTOCOLS = frozenset((
    'tcp', 'udp', 'icmp', 'icmpv6', 'ipv6-icmp', 'igmp', 'ggp', 'ipencap', 'st', 'egp', 'igp', 'pup', 'hmp',
    'xns-idp', 'rdp', 'iso-tp4', 'dccp', 'xtp', 'ddp', 'idpr-cmtp', 'ipv6', 'ipv6-route', 'ipv6-frag', 'idrp',
    'rsvp', 'gre', 'esp', 'ah', 'skip', 'ipv6-nonxt', 'ipv6-opts', 'vmtp', 'eigrp', 'ospf', 'ax.25', 'ipip',
    'etherip', 'encap', 'pim', 'ipcomp', 'vrrp', 'l2tp', 'isis', 'sctp', 'fc', 'mobility-header', 'udplite',
    'mpls-in-ip', 'manet', 'hip', 'shim6', 'wesp', 'rohc', 'ethernet',
))
PORT_PROTOCOLS = frozenset(('tcp', 'udp', 'dccp', 'sctp', 'udplite', '6', '17', '33', '132', '136'))
_NAME_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_-]{1,62}$')
_MAC_RE = re.compile(r'^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$')
_HOST_LABEL_RE = re.compile(r'[^a-z0-9-]+')


def as_id(value):
    """Guest IDs arrive as integers or digit strings; returns an int or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def hostname_of(name):
    """A DNS label for a guest name: lower case, other characters become '-'."""
    label = _HOST_LABEL_RE.sub('-', str(name).lower()).strip('-')
    return label[:63] or 'guest'


def parse_gpus(value, file, path, report):
    """'none' / '' / None -> []; '0' -> [0]; '0, 1' -> [0, 1]."""
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, list):
        items = [str(v) for v in value]
    else:
        text = str(value).strip()
        if text.lower() in ('', 'none'):
            return []
        items = text.split(',')
    gpus = []
    for item in items:
        item = item.strip()
        if not item.isdigit():
            report.error(file, pointer(*path), 'GPU assignment "%s" is not "none" or a comma-separated list of GPU '
                         'indexes such as "0" or "0, 1"' % (value,), 'gpu.format')
            return []
        index = int(item)
        if index in gpus:
            report.error(file, pointer(*path), 'GPU %d is listed twice in "%s"' % (index, value), 'gpu.duplicate')
            continue
        gpus.append(index)
    return gpus


def parse_interface(value, file, path, report, what='IP address'):
    """'10.0.0.5/24' -> IPv4Interface; reports and returns None on bad input."""
    try:
        return ipaddress.ip_interface(str(value).strip())
    except ValueError:
        report.error(file, pointer(*path), '"%s" is not a valid %s (expected e.g. 10.0.0.5/24)' % (value, what),
                     'network.ip')
        return None


_IPV4_RE = re.compile(r'^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?$')


def parse_address(value, file, path, report):
    """A guest address, with or without prefix length: (ip_text, prefix_or_None, ip_as_int, version) or None.

    Dotted IPv4 takes a fast path (thousands of guests); anything else goes through ipaddress,
    which also produces the error message for bad input.
    """
    text = str(value).strip()
    match = _IPV4_RE.match(text)
    if match:
        parts = match.groups()
        octets = [int(p) for p in parts[:4]]
        prefix = parts[4]
        if (max(octets) <= 255 and (prefix is None or int(prefix) <= 32)
                and not any(len(p) > 1 and p[0] == '0' for p in parts[:4])):
            number = (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]
            return '%d.%d.%d.%d' % tuple(octets), int(prefix) if prefix is not None else None, number, 4
    iface = parse_interface(text, file, path, report)
    if iface is None:
        return None
    return str(iface.ip), iface.network.prefixlen if '/' in text else None, int(iface.ip), iface.version


def in_network(number, version, network):
    """Whether an address (as int) lies in an ipaddress network."""
    return (network.version == version
            and (number & int(network.netmask)) == int(network.network_address))


def parse_network(value, file, path, report):
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        report.error(file, pointer(*path), '"%s" is not a valid subnet (expected e.g. 10.0.0.0/24)' % (value,),
                     'network.subnet')
        return None


def split_list(value):
    """'8.8.8.8, 1.1.1.1' or '8.8.8.8 1.1.1.1' or a list -> list of strings."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part for part in re.split(r'[\s,;]+', str(value).strip()) if part]


def normalize_mac(value, file, path, report):
    if value is None or value == '':
        return None
    text = str(value).strip()
    if not _MAC_RE.match(text):
        report.error(file, pointer(*path), '"%s" is not a MAC address (expected e.g. 52:54:00:AA:BB:CC)' % (value,),
                     'network.mac')
        return None
    mac = text.upper()
    if int(mac[:2], 16) & 1:
        report.error(file, pointer(*path), 'MAC address %s is a multicast address; guests need a unicast MAC' % mac,
                     'network.mac')
        return None
    return mac


# Valid port and address specs seen before: large configs repeat the same few values thousands of times.
_VALID_PORTS = {}
_VALID_ADDRESSES = {}


def _check_ports(spec, file, path, report):
    """Validate a Proxmox port spec: '22', '80,443', '8000:8010'. Returns the normalized string or None."""
    known = _VALID_PORTS.get(spec) if isinstance(spec, (str, int)) else None
    if known is not None:
        return known
    text = _parse_ports(spec, file, path, report)
    if text is not None and len(_VALID_PORTS) < 10000:
        _VALID_PORTS[spec] = text
    return text


def _parse_ports(spec, file, path, report):
    text = str(spec).strip().replace(' ', '')
    if not text:
        report.error(file, pointer(*path), 'empty port specification', 'firewall.port')
        return None
    for part in text.split(','):
        bounds = part.split(':')
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            report.error(file, pointer(*path), 'port "%s" is not a port, a list "80,443" or a range "8000:8010"'
                         % (spec,), 'firewall.port')
            return None
        numbers = [int(b) for b in bounds]
        for number in numbers:
            if not 1 <= number <= 65535:
                report.error(file, pointer(*path), 'port %d in "%s" is outside 1-65535' % (number, spec),
                             'firewall.port')
                return None
        if len(numbers) == 2 and numbers[0] > numbers[1]:
            report.error(file, pointer(*path), 'port range "%s" runs backwards (%d > %d)'
                         % (part, numbers[0], numbers[1]), 'firewall.port')
            return None
    return text


def _check_address(spec, file, path, report):
    """Validate a source/dest: IPs, CIDRs, ranges 'a-b', aliases, '+ipset', comma lists."""
    if isinstance(spec, str) and spec in _VALID_ADDRESSES:
        return _VALID_ADDRESSES[spec]
    warnings_before = len(report.warnings)
    text = _parse_address(spec, file, path, report)
    if text is not None and len(report.warnings) == warnings_before and len(_VALID_ADDRESSES) < 10000:
        _VALID_ADDRESSES[spec] = text
    return text


def _parse_address(spec, file, path, report):
    text = str(spec).strip()
    if not text:
        report.error(file, pointer(*path), 'empty address', 'firewall.address')
        return None
    for item in text.split(','):
        item = item.strip()
        if item.startswith('+'):
            name = item[1:].split('/')[-1]
            if not _NAME_RE.match(name):
                report.error(file, pointer(*path), 'IP set reference "%s" is not a valid IP set name' % item,
                             'firewall.address')
                return None
            continue
        bare = item.split('/', 1)[-1] if item.startswith(('dc/', 'guest/')) else item
        if _NAME_RE.match(bare):
            continue  # a firewall alias
        try:
            if '-' in item:
                low, high = (ipaddress.ip_address(p.strip()) for p in item.split('-', 1))
                if low.version != high.version or low > high:
                    raise ValueError(item)
            elif '/' in item:
                network = ipaddress.ip_network(item, strict=False)
                if str(network) != item and network.prefixlen != network.max_prefixlen:
                    report.warning(file, pointer(*path), 'CIDR "%s" has host bits set; it means %s'
                                   % (item, network), 'firewall.address')
            else:
                ipaddress.ip_address(item)
        except ValueError:
            report.error(file, pointer(*path), '"%s" is not an IP address, CIDR, range, alias or +ipset' % item,
                         'firewall.address')
            return None
    return text


def normalize_rule(rule, file, path, report, group_refs=None):
    """Normalize one firewall rule to Proxmox's field names; None when it is unusable.

    A rule of type 'group' names a security group; with ``group_refs`` (a list) each such
    reference is appended as (group name, file, JSON path parts of 'action'), so that the caller
    can check that the group exists.
    """
    if not isinstance(rule, dict):
        report.error(file, pointer(*path), 'a firewall rule must be an object', 'firewall.rule')
        return None
    ok = True
    rtype = str(rule.get('type', '')).lower()
    if rtype not in FIREWALL_TYPES:
        report.error(file, pointer(*(path + ['type'])), 'firewall rule type "%s" is not one of %s'
                     % (rule.get('type'), ', '.join(FIREWALL_TYPES)), 'firewall.type')
        ok = False
    action = str(rule.get('action', ''))
    if rtype == 'group':
        if not _NAME_RE.match(action):
            report.error(file, pointer(*(path + ['action'])), 'security group name "%s" is not valid' % action,
                         'firewall.action')
            ok = False
        elif group_refs is not None:
            group_refs.append((action, file, list(path) + ['action']))
    elif action.upper() not in FIREWALL_ACTIONS:
        report.error(file, pointer(*(path + ['action'])), 'firewall action "%s" is not one of %s'
                     % (rule.get('action'), ', '.join(FIREWALL_ACTIONS)), 'firewall.action')
        ok = False
    else:
        if action != action.upper():
            report.warning(file, pointer(*(path + ['action'])), 'firewall action "%s" is written in lower case; '
                           'using "%s"' % (action, action.upper()), 'firewall.action_case')
        action = action.upper()
    out = {'type': rtype, 'action': action, 'enabled': bool(rule.get('enabled', True))}
    proto = rule.get('proto')
    proto_ok = True
    if proto is not None:
        proto = str(proto).strip().lower()
        if not (proto in FIREWALL_PROTOCOLS or (proto.isdigit() and 0 <= int(proto) <= 255)):
            report.error(file, pointer(*(path + ['proto'])), 'protocol "%s" is not a known protocol name or number'
                         % rule.get('proto'), 'firewall.proto')
            ok = proto_ok = False
        out['proto'] = proto
    if 'port' in rule and 'dport' in rule:
        report.error(file, pointer(*(path + ['port'])), 'both "port" and "dport" are set; "port" is an alias of '
                     '"dport", keep one', 'firewall.port')
        ok = False
    for key, target in (('port', 'dport'), ('dport', 'dport'), ('sport', 'sport')):
        if key not in rule:
            continue
        ports = _check_ports(rule[key], file, path + [key], report)
        if ports is None:
            ok = False
            continue
        if proto is None:
            report.error(file, pointer(*(path + [key])), 'a port needs "proto" (tcp or udp)', 'firewall.port')
            ok = False
        elif proto_ok and proto not in PORT_PROTOCOLS:  # an unknown protocol is one mistake, reported above
            report.error(file, pointer(*(path + [key])), 'protocol "%s" has no ports; remove "%s" or use tcp/udp'
                         % (proto, key), 'firewall.port')
            ok = False
        out[target] = ports
    for key in ('source', 'dest'):
        if rule.get(key) not in (None, ''):
            address = _check_address(rule[key], file, path + [key], report)
            if address is None:
                ok = False
            out[key] = address
    log = rule.get('log')
    if log is not None:
        if log not in FIREWALL_LOG_LEVELS:
            report.error(file, pointer(*(path + ['log'])), 'log level "%s" is not one of %s'
                         % (log, ', '.join(FIREWALL_LOG_LEVELS)), 'firewall.log')
            ok = False
        out['log'] = log
    for key in ('iface', 'macro', 'comment', 'icmp-type'):
        if rule.get(key) not in (None, ''):
            out[key] = rule[key]
    return out if ok else None


def normalize_firewall(fw, file, path, report, group_refs=None):
    """{'enabled', 'rules'} with normalized rules; duplicate rules are warned about.

    ``group_refs``: see normalize_rule().
    """
    if not isinstance(fw, dict):
        fw = {}
    rules = []
    seen = {}
    raw_rules = fw.get('rules', fw.get('global_firewall_rules', []))
    if not isinstance(raw_rules, list):
        raw_rules = []  # reported by the schema
    rules_key = 'rules' if 'rules' in fw or 'global_firewall_rules' not in fw else 'global_firewall_rules'
    for index, rule in enumerate(raw_rules or []):
        rpath = path + [rules_key, index]
        norm = normalize_rule(rule, file, rpath, report, group_refs)
        if norm is None:
            continue
        key = tuple(sorted((k, str(v)) for k, v in norm.items() if k != 'comment'))
        if key in seen:
            report.warning(file, pointer(*rpath), 'firewall rule repeats rule %s' % pointer(*seen[key]),
                           'firewall.duplicate_rule')
            continue
        seen[key] = rpath
        rules.append(norm)
    out = {'enabled': bool(fw.get('enabled', bool(rules))), 'rules': rules}
    # Guests write policy_in/policy_out (Proxmox's names), the cluster default_input/output_policy.
    for key, target in (('default_input_policy', 'input_policy'), ('default_output_policy', 'output_policy'),
                        ('policy_in', 'input_policy'), ('policy_out', 'output_policy')):
        if key in fw:
            policy = str(fw[key]).upper()
            if policy not in FIREWALL_ACTIONS:
                report.error(file, pointer(*(path + [key])), 'policy "%s" is not one of %s'
                             % (fw[key], ', '.join(FIREWALL_ACTIONS)), 'firewall.policy')
            out[target] = policy
    return out
