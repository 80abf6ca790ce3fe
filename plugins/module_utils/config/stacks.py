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

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.loader import (
    read_json, read_yaml, validate_schema,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.normalize import normalize_rule
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import ERROR, pointer
from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_rules import (
    SECRET_NAME_RE, edge_labels, label_positions, port_findings, routers_from_labels, rule_hosts,
)

STACKS_FILE = 'phoenix_stacks_config.json'
STACK_MANIFEST = 'phoenix.json'
COMPOSE_NAMES = ('docker-compose.yml', 'docker-compose.yaml', 'compose.yml', 'compose.yaml')


def deep_merge(base, override):
    """Merge two JSON objects: objects key by key, everything else replaced by ``override``."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = dict((k, copy.deepcopy(v)) for k, v in base.items())
    for key, value in override.items():
        out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def _find_compose(stack_dir):
    for candidate in COMPOSE_NAMES:
        path = os.path.join(stack_dir, candidate)
        if os.path.isfile(path):
            return path, candidate
    return None, None


def load_stacks(config_dir, stacks_dir, environment, report, platform_rules=ERROR, deployments=None,
                group_refs=None):
    """Load, validate and merge every stack. Returns {name: stack}.

    Each stack is resolved for ``environment``. ``deployments`` ({stack name: environments guests
    deploy it in}) adds the other environments in use: each is resolved and checked too, and kept
    under the stack's ``other_environments``. ``group_refs``: see normalize_rule().
    """
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

    deployments = deployments or {}
    stacks = {}
    for name in sorted(names):
        others = sorted(e for e in deployments.get(name, ()) if e != environment)
        stacks[name] = _build_stack(name, central.get(name), local.get(name), environment, others, report,
                                    platform_rules, group_refs)
    return stacks


def _origin(sources, keys):
    """Where a merged value is written: (file, JSON path parts) in the first source (highest precedence
    first) that has the whole key path. Objects are merged key by key, so the deepest key decides."""
    for file, base, doc in sources:
        node = doc
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return file, base + list(keys)
    file, base = sources[-1][:2] if sources else (STACKS_FILE, [])
    return file, base + list(keys)


def _build_stack(name, central, local, environment, others, report, platform_rules, group_refs=None):
    manifest = (local or {}).get('manifest')
    merged = deep_merge(central or {}, manifest or {})
    # Where each merged value is written, for messages: the per-stack file wins over the central one.
    sources = []
    if manifest:
        sources.append(('stacks/%s/%s' % (name, STACK_MANIFEST), [], manifest))
    if central:
        sources.append((STACKS_FILE, ['docker_stacks', name], central))
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
        'source': sources[0][0] if sources else STACKS_FILE,
        'other_environments': {},
    }
    # variables, files, services, routers, firewall_rules of the load environment
    views = [(environment, _resolve_environment(environment, environments, sources, report, group_refs, name))]
    stack.update(views[0][1])
    for env in others:
        if env in environments:  # an environment the stack lacks is reported where the guest deploys it
            view = _resolve_environment(env, environments, sources, report, group_refs,
                                        '%s (environment %s)' % (name, env))
            stack['other_environments'][env] = view
            views.append((env, view))

    compose_path = (local or {}).get('compose_path')
    if compose_path:
        compose_label = 'stacks/%s/%s' % (name, os.path.basename(compose_path))
        stack['compose_file'] = compose_path
        compose = read_yaml(compose_path, compose_label, report)
        if compose is not None:
            if _check_compose(name, compose, compose_label, report, platform_rules):
                for env, view in views:
                    _check_services(name if env == environment else '%s (environment %s)' % (name, env),
                                    compose, view, sources, env, report)
            stack['compose'] = compose
    return stack


def _resolve_environment(env_name, environments, sources, report, group_refs, label):
    """The settings of one environment of a stack, checked; findings point where each value is written.

    ``label`` names the stack in messages (with the environment when it is not the load environment).
    """
    env = environments.get(env_name) or {}
    base = ['environments', env_name]
    view = {'variables': [], 'files': [], 'services': {}, 'routers': {}, 'firewall_rules': []}
    var_file, var_path = _origin(sources, base + ['variables'])
    for index, var in enumerate(_as_list(env.get('variables'))):
        entry = {'name': var.get('name'), 'secret': bool(var.get('secret', False))}
        if 'value_from' in var:
            entry['value_from'] = var['value_from']
            entry['secret'] = bool(var.get('secret', True))
        else:
            entry['value'] = var.get('value', '')
            if entry['value'] and SECRET_NAME_RE.search(str(entry['name'] or '')) and not var.get('secret', False):
                report.warning(var_file, pointer(*(var_path + [index, 'value'])),
                               'variable %s of stack %s looks like a secret stored in plain text; use "value_from" '
                               'with a vaulted variable' % (entry['name'], label), 'secret.plaintext')
        view['variables'].append(entry)
    view['files'] = list(_as_list(env.get('files')))
    services = env.get('services') if isinstance(env.get('services'), dict) else {}
    for svc, svc_conf in sorted(services.items()):
        labels, positions = label_positions((svc_conf or {}).get('traefik_labels', []))
        label_file, label_path = _origin(sources, base + ['services', svc, 'traefik_labels'])
        view['services'][svc] = {'traefik_labels': labels}
        for router, rule in routers_from_labels(labels).items():
            hosts, only_hosts = rule_hosts(rule)
            view['routers'][router] = {
                'service': svc, 'rule': rule, 'hosts': hosts, 'only_hosts': only_hosts,
                'file': label_file, 'path': pointer(*label_path),
            }
        for problem in edge_labels(labels)[1]:
            report.error(label_file, pointer(*label_path),
                         'stack %s, service %s: %s' % (label, svc, problem), 'traefik.labels')
        for key, value in labels.items():
            if key.endswith('.loadbalancer.server.port') and not (value.isdigit() and 1 <= int(value) <= 65535):
                report.error(label_file, pointer(*(label_path + [positions[key]])),
                             'load balancer port "%s" of service %s is not a port number 1-65535' % (value, svc),
                             'traefik.port')
    rule_file, rule_path = _origin(sources, base + ['firewall_rules'])
    for index, rule in enumerate(_as_list(env.get('firewall_rules'))):
        norm = normalize_rule(rule, rule_file, rule_path + [index], report, group_refs)
        if norm is not None:
            view['firewall_rules'].append(norm)
    return view


def _as_list(value):
    return value if isinstance(value, list) else []


def _check_compose(name, compose, label, report, platform_rules):
    """The compose file itself; True when it has services to check the stack's settings against."""
    if not isinstance(compose, dict) or not isinstance(compose.get('services'), dict) or not compose['services']:
        report.error(label, '/services', 'a compose file needs a "services" mapping with at least one service',
                     'compose.services')
        return False
    for svc, conf in compose['services'].items():
        if not isinstance(conf, dict):
            report.error(label, pointer('services', svc), 'service %s must be a mapping' % svc, 'compose.service')
            continue
        # the ports/expose rule (stack_rules.port_findings), at the level platform_rules gives it
        for finding in port_findings({svc: conf}, name, platform_rules):
            report.add(finding['level'], label, pointer('services', svc, finding['key']), finding['message'],
                       'platform.compose_ports')
    return True


def _check_services(label, compose, view, sources, env, report):
    """Traefik labels only for services the compose file has."""
    for svc in view['services']:
        if svc not in compose['services']:
            file, path = _origin(sources, ['environments', env, 'services', svc, 'traefik_labels'])
            report.error(file, pointer(*path[:-1]),
                         'service %s has traefik_labels but stack %s has no such service in its compose file'
                         % (svc, label), 'stack.unknown_service')
