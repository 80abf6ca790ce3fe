# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker stacks: merging phoenix_stacks_config.json with stacks/<name>/phoenix.json.

Precedence: the per-stack ``phoenix.json`` (kept next to the compose file) wins
over the central ``phoenix_stacks_config.json``. Objects are merged key by key;
lists are replaced, never concatenated.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import os
import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.loader import (
    read_json, read_yaml, validate_schema,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.normalize import normalize_rule
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import ERROR, pointer

STACKS_FILE = 'phoenix_stacks_config.json'
STACK_MANIFEST = 'phoenix.json'
COMPOSE_NAMES = ('docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml')
SECRET_NAME_RE = re.compile(r'(PASS|SECRET|TOKEN|API_?KEY|PRIVATE)', re.IGNORECASE)
_ROUTER_RULE_RE = re.compile(r'^traefik\.http\.routers\.([^.]+)\.rule$')
_HOST_RE = re.compile(r'Host\(([^)]*)\)')
_QUOTED_RE = re.compile(r'`([^`]*)`|"([^"]*)"')
_ONLY_HOSTS_RE = re.compile(r'^\s*Host\([^)]*\)(\s*\|\|\s*Host\([^)]*\))*\s*$')


def deep_merge(base, override):
    """Merge two JSON objects: objects key by key, everything else replaced by ``override``."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = dict((k, copy.deepcopy(v)) for k, v in base.items())
    for key, value in override.items():
        out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def parse_labels(labels):
    """Traefik labels as ["key=value", ...] or {"key": "value"} -> ordered dict."""
    out = {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            out[str(key)] = '' if value is None else str(value)
        return out
    for label in labels or []:
        key, sep, value = str(label).partition('=')
        out[key.strip()] = value.strip() if sep else ''
    return out


def rule_hosts(rule):
    """Host names a Traefik rule matches, and whether the rule is made of Host() matchers only."""
    hosts = []
    for args in _HOST_RE.findall(rule or ''):
        for back, dq in _QUOTED_RE.findall(args):
            host = (back or dq).strip().lower()
            if host:
                hosts.append(host)
    return hosts, bool(_ONLY_HOSTS_RE.match(rule or ''))


def routers_from_labels(labels):
    """{router_name: rule} from parsed labels."""
    routers = {}
    for key, value in labels.items():
        match = _ROUTER_RULE_RE.match(key)
        if match:
            routers[match.group(1)] = value
    return routers


def _find_compose(stack_dir):
    for candidate in COMPOSE_NAMES:
        path = os.path.join(stack_dir, candidate)
        if os.path.isfile(path):
            return path, candidate
    return None, None


def load_stacks(config_dir, stacks_dir, environment, report, platform_rules=ERROR):
    """Load, validate and merge every stack. Returns {name: stack}."""
    central = {}
    central_path = os.path.join(config_dir, STACKS_FILE)
    if os.path.isfile(central_path):
        data = read_json(central_path, STACKS_FILE, report)
        if data is not None and validate_schema(data, STACKS_FILE, STACKS_FILE, report):
            central = data.get('docker_stacks', {}) or {}
    names = set(central)
    local = {}
    if stacks_dir and os.path.isdir(stacks_dir):
        for entry in sorted(os.listdir(stacks_dir)):
            stack_dir = os.path.join(stacks_dir, entry)
            if not os.path.isdir(stack_dir) or entry.startswith('.'):
                continue
            manifest_path = os.path.join(stack_dir, STACK_MANIFEST)
            compose_path, _compose_name = _find_compose(stack_dir)
            if not os.path.isfile(manifest_path) and compose_path is None:
                continue
            names.add(entry)
            local[entry] = {'dir': stack_dir, 'manifest': None, 'compose_path': compose_path}
            if os.path.isfile(manifest_path):
                label = 'stacks/%s/%s' % (entry, STACK_MANIFEST)
                data = read_json(manifest_path, label, report)
                if data is not None and validate_schema(data, STACK_MANIFEST, label, report):
                    local[entry]['manifest'] = data

    stacks = {}
    for name in sorted(names):
        stacks[name] = _build_stack(name, central.get(name), local.get(name), environment, report, platform_rules)
    return stacks


def _build_stack(name, central, local, environment, report, platform_rules):
    merged = deep_merge(central or {}, (local or {}).get('manifest') or {})
    # Which file a merged value came from, for error messages.
    source_file = 'stacks/%s/%s' % (name, STACK_MANIFEST) if (local or {}).get('manifest') else STACKS_FILE
    source_base = [] if (local or {}).get('manifest') else ['docker_stacks', name]
    environments = merged.get('environments', {}) or {}
    stack = {
        'name': name,
        'description': merged.get('description', ''),
        'environments': sorted(environments),
        'environment': environment,
        'defined_for_environment': environment in environments,
        'compose_file': None,
        'compose_file_path': merged.get('compose_file_path'),
        'compose': None,
        'variables': [],
        'files': [],
        'services': {},
        'routers': {},
        'firewall_rules': [],
        'source': source_file,
    }
    env = environments.get(environment) or {}
    env_path = source_base + ['environments', environment]
    for index, var in enumerate(env.get('variables', []) or []):
        entry = {'name': var.get('name'), 'secret': bool(var.get('secret', False))}
        if 'value_from' in var:
            entry['value_from'] = var['value_from']
            entry['secret'] = bool(var.get('secret', True))
        else:
            entry['value'] = var.get('value', '')
            if entry['value'] and SECRET_NAME_RE.search(str(entry['name'] or '')) and not var.get('secret', False):
                report.warning(source_file, pointer(*(env_path + ['variables', index, 'value'])),
                               'variable %s of stack %s looks like a secret stored in plain text; use "value_from" '
                               'with a vaulted variable' % (entry['name'], name), 'secret.plaintext')
        stack['variables'].append(entry)
    stack['files'] = list(env.get('files', []) or [])
    for svc, svc_conf in sorted((env.get('services', {}) or {}).items()):
        labels = parse_labels((svc_conf or {}).get('traefik_labels', []))
        stack['services'][svc] = {'traefik_labels': labels}
        for router, rule in routers_from_labels(labels).items():
            hosts, only_hosts = rule_hosts(rule)
            stack['routers'][router] = {
                'service': svc, 'rule': rule, 'hosts': hosts, 'only_hosts': only_hosts,
                'file': source_file,
                'path': pointer(*(env_path + ['services', svc, 'traefik_labels'])),
            }
        port_label = [v for k, v in labels.items() if k.endswith('.loadbalancer.server.port')]
        for value in port_label:
            if not (value.isdigit() and 1 <= int(value) <= 65535):
                report.error(source_file, pointer(*(env_path + ['services', svc, 'traefik_labels'])),
                             'load balancer port "%s" of service %s is not a port number 1-65535' % (value, svc),
                             'traefik.port')
    for index, rule in enumerate(env.get('firewall_rules', []) or []):
        norm = normalize_rule(rule, source_file, env_path + ['firewall_rules', index], report)
        if norm is not None:
            stack['firewall_rules'].append(norm)

    compose_path = (local or {}).get('compose_path')
    if compose_path:
        compose_label = 'stacks/%s/%s' % (name, os.path.basename(compose_path))
        stack['compose_file'] = compose_path
        compose = read_yaml(compose_path, compose_label, report)
        if compose is not None:
            _check_compose(name, compose, compose_label, stack, env_path, report, platform_rules)
            stack['compose'] = compose
    return stack


def _check_compose(name, compose, label, stack, env_path, report, platform_rules):
    if not isinstance(compose, dict) or not isinstance(compose.get('services'), dict) or not compose['services']:
        report.error(label, '/services', 'a compose file needs a "services" mapping with at least one service',
                     'compose.services')
        return
    for svc, conf in compose['services'].items():
        if not isinstance(conf, dict):
            report.error(label, pointer('services', svc), 'service %s must be a mapping' % svc, 'compose.service')
            continue
        for key in ('ports', 'expose'):
            if key in conf:
                report.add(platform_rules, label, pointer('services', svc, key),
                           'service %s of stack %s uses "%s": stacks must not publish or expose ports, every '
                           'service is reached through Traefik (declare traefik_labels in phoenix.json)'
                           % (svc, name, key), 'platform.compose_ports')
    for svc in stack['services']:
        if svc not in compose['services']:
            report.error(stack['source'], pointer(*(env_path + ['services', svc])),
                         'service %s has traefik_labels but stack %s has no such service in its compose file'
                         % (svc, name), 'stack.unknown_service')
