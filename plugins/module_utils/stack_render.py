# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rendering of a Phoenix Docker stack: the one place that turns a compose file plus the stack's settings
(the config model's view of ``phoenix_stacks_config.json`` merged with ``stacks/<name>/phoenix.json``)
into what is deployed.

Pure and deterministic: the same inputs always give byte-identical output, so the deployed file can be
compared as text with what Portainer (``GET /api/stacks/{id}/file``) or the Swarm backend has stored.

Rules (docs/stacks.md):
- ``ports``/``expose``: the rule of stack_rules.port_findings, at the level ``platform_rules`` gives it (the
  config model's switch): ``error`` rejects the stack, naming the file and the service; ``warning`` renders it and
  lists the finding under ``warnings``;
- each routed service (one with ``traefik_labels``) gets its labels merged into ``deploy.labels``, joins
  the routed overlay network (declared ``external``) next to its own networks (``default`` when it had
  none), and gets the label that tells Traefik which network to reach its tasks on;
- environment variables become the stack's env list (``[{name, value}]``) that ``docker stack deploy``
  interpolates ``${VAR}`` references from; secret names are kept so that diffs mask their values;
- files become Docker configs named after their content hash, mounted into every service;
- top-level ``secrets`` that take their value from a stack variable (``environment: VAR``, the compose
  specification's form) become external Swarm secrets: the variable leaves the env, its value goes to
  ``secrets`` (``[{name, value}]``), which portainer_stack creates under a versioned name.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import hashlib
import hmac
import json
import os
import re

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported by the callers
    yaml = None
    HAS_YAML = False

from ansible_collections.thinkheads.phoenix.plugins.module_utils.stack_rules import (
    ERROR, SECRET_NAME_RE, StackRuleError, edge_labels, environment_view as _environment_view, parse_labels,
    port_findings, routers_from_labels, rule_hosts, service_ports,
)

DEFAULT_ROUTED_NETWORK = 'phoenix-routed'
# Traefik v3's Swarm provider reads traefik.swarm.*; Traefik v2 (docker provider in swarm mode) traefik.docker.*
DEFAULT_NETWORK_LABEL = 'traefik.swarm.network'
DEFAULT_COMPOSE_VERSION = '3.8'
# service label naming the Phoenix stack a service was rendered for (sync's pruning looks for it)
MANAGED_LABEL = 'io.thinkheads.phoenix.stack'
_CONFIG_NAME_RE = re.compile(r'[^A-Za-z0-9_.-]+')
MASK = '********'


class StackRenderError(Exception):
    """Bad input: the message names the file and the service."""


def _dumper():
    class PhoenixDumper(yaml.SafeDumper):
        pass

    def str_presenter(dumper, data):
        if '\n' in data:
            return dumper.represent_scalar('tag:yaml.org,2002:str', data, style='|')
        return dumper.represent_scalar('tag:yaml.org,2002:str', data)

    PhoenixDumper.add_representer(str, str_presenter)

    def ignore_aliases(data):
        return True
    PhoenixDumper.ignore_aliases = staticmethod(ignore_aliases)
    return PhoenixDumper


def plain(value):
    """Plain dicts, lists and str/int/float/bool/None: Ansible hands filters its own tagged subclasses."""
    if isinstance(value, dict):
        return dict((plain(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def dump_yaml(data):
    """YAML text, keys in their given order, multi-line strings as literal blocks, no anchors."""
    return yaml.dump(plain(data), Dumper=_dumper(), default_flow_style=False, sort_keys=False, allow_unicode=True,
                     width=1000, indent=2)


def load_compose(compose, label):
    """A compose document from text (or an already parsed mapping)."""
    if isinstance(compose, dict):
        return copy.deepcopy(compose)
    if not HAS_YAML:
        raise StackRenderError('the Python library PyYAML is required to render stacks')
    try:
        data = yaml.safe_load(compose or '')
    except yaml.YAMLError as exc:
        raise StackRenderError('%s is not valid YAML: %s' % (label, exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get('services'), dict) or not data['services']:
        raise StackRenderError('%s: a compose file needs a "services" mapping with at least one service' % label)
    for name, conf in data['services'].items():
        if not isinstance(conf, dict):
            raise StackRenderError('%s: service %s must be a mapping' % (label, name))
    return data


def _labels_dict(labels, where):
    if labels is None:
        return {}
    if isinstance(labels, dict):
        return dict((str(k), '' if v is None else str(v)) for k, v in labels.items())
    if isinstance(labels, list):
        return parse_labels(labels)
    raise StackRenderError('%s: labels must be a list of "key=value" or a mapping' % where)


def environment_view(stack, environment=None):
    """The settings of one environment of a config-model stack (stack_rules.environment_view); a missing
    environment is a StackRenderError."""
    try:
        return _environment_view(stack, environment)
    except KeyError as exc:
        raise StackRenderError(exc.args[0]) from None


def resolve_env(variables, values=None, name=''):
    """[{name, value, secret}] from the stack's variables; ``values`` holds what ``value_from`` names
    (keyed by the value_from name or by the variable name). A missing value fails with its name."""
    values = values or {}
    out = []
    seen = set()
    for var in variables or []:
        vname = var.get('name')
        if vname in seen:
            raise StackRenderError('stack %s declares variable %s twice' % (name, vname))
        seen.add(vname)
        if 'value_from' in var:
            key = var['value_from']
            if key in values:
                value = values[key]
            elif vname in values:
                value = values[vname]
            else:
                raise StackRenderError('stack %s: variable %s takes its value from "%s", which is not set' % (
                    name, vname, key))
            secret = bool(var.get('secret', True))
        else:
            value = var.get('value', '')
            secret = bool(var.get('secret', False))
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        out.append({'name': str(vname), 'value': '' if value is None else str(value), 'secret': secret})
    return out


def normalize_env(env):
    """An env given as a dict or a list of {name, value} -> sorted list of {name, value} (string values)."""
    if env is None:
        return []
    if isinstance(env, dict):
        items = [(str(k), v) for k, v in env.items()]
    else:
        items = []
        for entry in env:
            if not isinstance(entry, dict) or 'name' not in entry:
                raise StackRenderError('each env entry needs "name" and "value" (got %r)' % (entry,))
            items.append((str(entry['name']), entry.get('value', '')))
    out = {}
    for key, value in items:
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        out[key] = '' if value is None else str(value)
    return [{'name': k, 'value': out[k]} for k in sorted(out)]


def secret_names(env_entries, extra=None):
    """Names whose values are masked: flagged secret, or named like a secret."""
    names = set(extra or [])
    for entry in env_entries or []:
        if entry.get('secret') or SECRET_NAME_RE.search(entry.get('name', '')):
            names.add(entry['name'])
    return sorted(names)


def hash_key(material):
    """A key for ``mask_env`` and ``content_hash`` from a deployment secret (``secret_hash_key``, the Portainer API
    key, the Swarm's manager join token): never the secret itself, and never a hash a stack's secret could be guessed
    from without it."""
    if not material:
        return None
    return hashlib.sha256(b'thinkheads.phoenix stack secret hash\0' + material.encode('utf-8')).digest()


def mask_env(env, secrets, key=None):
    """The env with secret values replaced by a mask. With ``key`` the mask carries 8 hex digits of an HMAC-SHA256 of
    the value, so that it changes when the value does without being guessable from a list of weak passwords (an
    unsalted hash was); without a key, the mask alone."""
    out = []
    for entry in env:
        if entry['name'] in secrets:
            if key:
                digest = hmac.new(key, entry['value'].encode('utf-8'), hashlib.sha256).hexdigest()[:8]
                out.append({'name': entry['name'], 'value': '%s (hmac:%s)' % (MASK, digest)})
            else:
                out.append({'name': entry['name'], 'value': MASK})
        else:
            out.append(dict(entry))
    return out


def _config_name(stack_name, source, content):
    base = _CONFIG_NAME_RE.sub('_', os.path.basename(source)) or 'file'
    digest = hashlib.sha256(content.encode('utf-8')).hexdigest()[:10]
    return '%s_%s_%s' % (stack_name, base, digest)


def _stack_secrets(doc, entries, name, label):
    """Top-level secrets fed by a stack variable (``environment: VAR``) -> external secrets named
    ``<stack>_<key>`` (portainer_stack versions the name by the value); returns ([{name, value}], {VAR: key})."""
    top = doc.get('secrets')
    if top is None:
        return [], {}
    if not isinstance(top, dict):
        raise StackRenderError('%s: top-level "secrets" must be a mapping' % label)
    by_name = dict((e['name'], e) for e in entries)
    out, feeds = [], {}
    for key in sorted(top):
        conf = top[key]
        if not isinstance(conf, dict) or 'environment' not in conf:
            continue
        extra = sorted(k for k in conf if k != 'environment')
        if extra:
            raise StackRenderError('%s: secret %s: only "environment" may be set for a secret that takes its value '
                                   'from a stack variable (got %s)' % (label, key, ', '.join(extra)))
        var = str(conf['environment'])
        if var not in by_name:
            raise StackRenderError('%s: secret %s takes its value from variable %s, which stack %s does not declare '
                                   '(declare it in phoenix.json, with value_from naming the vault variable)' % (
                                       label, key, var, name))
        base = '%s_%s' % (name, key)
        top[key] = {'external': True, 'name': base}
        out.append({'name': base, 'value': by_name[var]['value']})
        feeds[var] = key
    return sorted(out, key=lambda s: s['name']), feeds


def render(compose, name, stack=None, environment=None, values=None, env=None, routed_network=DEFAULT_ROUTED_NETWORK,
           network_label=DEFAULT_NETWORK_LABEL, platform_rules=ERROR, compose_label=None, files=None,
           compose_version=DEFAULT_COMPOSE_VERSION):
    """Render one stack. Returns {compose (text), env [{name, value}], secret_env_names, routing, configs, secrets,
    warnings}.

    ``stack``: the config model's stack (``phoenix_stacks[name]``); ``environment`` picks one of its
    environments. ``values``: values for ``value_from`` variables. ``env``: extra variables (dict or list),
    added after the stack's own. ``files``: {source: content} for the stack's files (else read from the
    stack's directory). ``routed_network``: empty to not attach routed services to a shared network.
    ``platform_rules``: ``error`` or ``warning``, the level of the ports/expose rule (the config model's switch);
    warnings come back under ``warnings``, with the file named.
    """
    compose, name, stack, values, env, files = (plain(x) for x in (compose, name, stack, values, env, files))
    label = compose_label or 'stacks/%s/docker-compose.yml' % name
    doc = load_compose(compose, label)
    view = environment_view(stack, environment)
    services = doc['services']

    # 1. no published or exposed ports: the one rule, at the level platform_rules gives it
    try:
        findings = port_findings(services, name, platform_rules)
    except StackRuleError as exc:
        raise StackRenderError(str(exc)) from None
    warnings = []
    for finding in findings:
        message = '%s: %s' % (label, finding['message'])
        if finding['level'] == ERROR:
            raise StackRenderError(message)
        warnings.append(message)

    # 2. Traefik labels into deploy.labels, routed services onto the routed network
    svc_settings = view.get('services') or {}
    routing = []
    routed_any = False
    for svc in sorted(svc_settings):
        labels = (svc_settings[svc] or {}).get('traefik_labels') or {}
        if isinstance(labels, list):
            labels = parse_labels(labels)
        if svc not in services:
            raise StackRenderError('stack %s: traefik_labels are set for service %s, which %s does not define' % (
                name, svc, label))
        if not labels:
            continue
        labels, problems = edge_labels(labels)
        if problems:
            raise StackRenderError('stack %s, service %s: %s' % (name, svc, '; '.join(problems)))
        conf = services[svc]
        if conf.get('deploy') is None:
            conf['deploy'] = {}
        deploy = conf['deploy']
        if not isinstance(deploy, dict):
            raise StackRenderError('%s: service %s: "deploy" must be a mapping' % (label, svc))
        merged = _labels_dict(deploy.get('labels'), '%s: service %s deploy.labels' % (label, svc))
        merged.update(labels)
        routed = routed_network and str(labels.get('traefik.enable', 'true')).lower() != 'false'
        if routed:
            merged[network_label] = routed_network
            routed_any = True
            networks = conf.get('networks')
            if networks is None:
                conf['networks'] = ['default', routed_network]
            elif isinstance(networks, list):
                if routed_network not in networks:
                    networks.append(routed_network)
            elif isinstance(networks, dict):
                networks.setdefault(routed_network, None)
            else:
                raise StackRenderError('%s: service %s: "networks" must be a list or a mapping' % (label, svc))
        deploy['labels'] = dict((k, merged[k]) for k in sorted(merged))
        ports = service_ports(labels)
        routers = []
        hosts = []
        for router, rule in sorted(routers_from_labels(labels).items()):
            rhosts, _only = rule_hosts(rule)
            routers.append({'name': router, 'rule': rule, 'hosts': rhosts,
                            'service': labels.get('traefik.http.routers.%s.service' % router)})
            hosts.extend(h for h in rhosts if h not in hosts)
        port_values = sorted(set(str(p) for p in ports.values()))
        routing.append({
            'stack': name, 'service': svc, 'swarm_service': '%s_%s' % (name, svc),
            'tasks_dns': 'tasks.%s_%s' % (name, svc), 'hosts': hosts, 'routers': routers,
            'port': ports[sorted(ports)[0]] if len(port_values) == 1 else None, 'ports': ports,
            'network': routed_network if routed else None,
        })
    # every service carries the stack it belongs to: how sync finds the stacks it manages (pruning)
    for svc, conf in services.items():
        if conf.get('deploy') is None:
            conf['deploy'] = {}
        if not isinstance(conf['deploy'], dict):
            raise StackRenderError('%s: service %s: "deploy" must be a mapping' % (label, svc))
        merged = _labels_dict(conf['deploy'].get('labels'), '%s: service %s deploy.labels' % (label, svc))
        merged[MANAGED_LABEL] = name
        conf['deploy']['labels'] = dict((k, merged[k]) for k in sorted(merged))

    if routed_any:
        networks = doc.get('networks')
        if networks is None:
            doc['networks'] = networks = {}
        if not isinstance(networks, dict):
            raise StackRenderError('%s: top-level "networks" must be a mapping' % label)
        declared = networks.get(routed_network) or {}
        if not declared.get('external'):
            networks[routed_network] = {'external': True, 'name': routed_network}

    # 3. files -> content-addressed Docker configs mounted into every service
    configs = []
    for entry in view.get('files') or []:
        source, target = entry['source'], entry['destination_in_container']
        if files and source in files:
            content = files[source]
        else:
            base = os.path.dirname((stack or {}).get('compose_file') or '')
            path = source if os.path.isabs(source) else os.path.join(base, source)
            try:
                with open(path) as handle:
                    content = handle.read()
            except (IOError, OSError) as exc:
                raise StackRenderError('stack %s: file %s cannot be read: %s' % (name, source, exc)) from None
        cname = _config_name(name, source, content)
        configs.append({'name': cname, 'content': content, 'target': target, 'source': source})
        doc.setdefault('configs', {})[cname] = {'external': True, 'name': cname}
        for svc in services:
            mounts = services[svc].setdefault('configs', [])
            mounts.append({'source': cname, 'target': target})

    if compose_version and 'version' not in doc:
        # docker stack deploy (Docker 20.10) needs a 3.x version; 3.8 has every key the platform uses
        doc = dict([('version', compose_version)] + list(doc.items()))

    entries = resolve_env(view.get('variables'), values, name)
    # 4. compose secrets fed by a variable: Swarm secrets, their variables out of the env
    stack_secrets, feeds = _stack_secrets(doc, entries, name, label)
    if feeds:
        text = dump_yaml(doc)
        for var in sorted(feeds):
            if re.search(r'\$\{?%s(?![A-Za-z0-9_])' % re.escape(var), text):
                raise StackRenderError('%s: variable %s feeds secret %s and must not also be interpolated in the '
                                       'compose file (its value would be in the service\'s environment, visible '
                                       'in docker service inspect): read /run/secrets/%s instead' % (
                                           label, var, feeds[var], feeds[var]))
        entries = [e for e in entries if e['name'] not in feeds]
    if env:
        names = set(e['name'] for e in entries)
        for extra in normalize_env(env):
            if extra['name'] not in names and extra['name'] not in feeds:
                entries.append(dict(extra, secret=False))
    rendered_env = normalize_env(entries)
    return {
        'name': name,
        'compose': dump_yaml(doc),
        'env': rendered_env,
        'secret_env_names': secret_names(entries),
        'routing': routing,
        'configs': configs,
        'secrets': stack_secrets,
        'warnings': warnings,
    }


def content_hash(compose_text, env, configs=None, key=None):
    """sha256 over the rendered compose, the env and the configs: what the Swarm backend stores. With ``key`` (an env
    with secret values) an HMAC-SHA256: the record keeps the compose and the other values in clear, so a plain hash
    would let anyone who reads it test guesses of the secrets."""
    payload = json.dumps({'compose': compose_text, 'env': normalize_env(env),
                          'configs': sorted(c['name'] for c in (configs or []))}, sort_keys=True).encode('utf-8')
    if key:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()
