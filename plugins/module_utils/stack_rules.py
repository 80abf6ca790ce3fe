# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stack rules shared by validation (config/stacks.py), rendering (stack_render.py) and routing (routing.py).

Neutral: imports nothing from the collection, so deploy-time code does not pull in the config loader.

- Traefik labels: :func:`parse_labels`, :func:`label_positions`, :func:`routers_from_labels`,
  :func:`rule_hosts`, :func:`edge_labels` (what the Swarm edge needs, and what is missing).
- The ports/expose rule: :func:`port_findings`, the one function that evaluates it; ``platform_rules``
  (``error`` or ``warning``) is its one switch, the same at validation and at render time.
- The environment view: :func:`environment_view`, the settings of one environment of a config-model stack.
- :data:`SECRET_NAME_RE`: variable names whose values are treated as secrets.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

ERROR = 'error'
WARNING = 'warning'
PLATFORM_RULES = (ERROR, WARNING)
PORT_KEYS = ('ports', 'expose')
SECRET_NAME_RE = re.compile(r'(PASS|SECRET|TOKEN|API_?KEY|PRIVATE)', re.IGNORECASE)
_ROUTER_RULE_RE = re.compile(r'^traefik\.http\.routers\.([^.]+)\.rule$')
_HOST_RE = re.compile(r'Host\(([^)]*)\)')
_QUOTED_RE = re.compile(r'`([^`]*)`|"([^"]*)"')
_PORT_LABEL_RE = re.compile(r'^traefik\.http\.services\.([^.]+)\.loadbalancer\.server\.port$')
_ONLY_HOSTS_RE = re.compile(r'^\s*Host\([^)]*\)(\s*\|\|\s*Host\([^)]*\))*\s*$')


class StackRuleError(ValueError):
    """A bad argument to a stack rule (an unknown ``platform_rules`` level)."""


def parse_labels(labels):
    """Traefik labels as ["key=value", ...] or {"key": "value"} -> ordered dict."""
    return label_positions(labels)[0]


def label_positions(labels):
    """(labels as an ordered dict, {key: position}): a label's position is its list index (or its key
    in the object form), for messages about one label. A repeated key keeps its last value and position."""
    out, positions = {}, {}
    if isinstance(labels, dict):
        for key, value in labels.items():
            out[str(key)] = '' if value is None else str(value)
            positions[str(key)] = key
        return out, positions
    for index, label in enumerate(labels if isinstance(labels, list) else []):
        key, sep, value = str(label).partition('=')
        key = key.strip()
        out[key] = value.strip() if sep else ''
        positions[key] = index
    return out, positions


def rule_hosts(rule):
    """Host names a Traefik rule matches, and whether the rule is made of Host() matchers only."""
    hosts = []
    for args in _HOST_RE.findall(rule or ''):
        for back, dq in _QUOTED_RE.findall(args):
            host = (back or dq).strip().lower()
            if host:
                hosts.append(host)
    return hosts, bool(_ONLY_HOSTS_RE.match(rule or ''))


def service_ports(labels):
    """{traefik service name: its loadbalancer.server.port (an int when it is all digits)} from parsed labels."""
    ports = {}
    for key, value in labels.items():
        match = _PORT_LABEL_RE.match(key)
        if match:
            ports[match.group(1)] = int(value) if str(value).isdigit() else value
    return ports


def routers_from_labels(labels):
    """{router_name: rule} from parsed labels."""
    routers = {}
    for key, value in labels.items():
        match = _ROUTER_RULE_RE.match(key)
        if match:
            routers[match.group(1)] = value
    return routers


# The Swarm edge (role swarm_edge) has one entry point and serves its own Step-CA certificate: a stack router's
# entry points, TLS switch and ACME settings are the edge's business, not the manifest's (the Traefik guest in
# front of it holds the resolver the labels name).
EDGE_ENTRYPOINT = 'websecure'
_ROUTER_KEY_RE = re.compile(r'^traefik\.http\.routers\.([^.]+)\.(.+)$')
_SERVICE_KEY_RE = re.compile(r'^traefik\.http\.services\.([^.]+)\.')
_EDGE_DROPPED = re.compile(r'^tls\.(certresolver|domains\[\d+\]\..+)$', re.IGNORECASE)


def edge_labels(labels, entrypoint=EDGE_ENTRYPOINT):
    """A routed service's Traefik labels as the Swarm edge needs them, and what is missing.

    Returns (labels, problems). For every HTTP router: the entry point becomes ``entrypoint``, ``tls=true`` is
    set, ``tls.certresolver`` and ``tls.domains`` are dropped (the edge serves its default certificate), and a
    router without ``service`` is linked to the one service the labels define. ``problems`` lists what the
    platform cannot know, one message per missing label: a router without a rule, a router that has to name one
    of several services, a service without its ``loadbalancer.server.port`` (Swarm tasks publish no port).
    Labels of a service that does not set ``traefik.enable=true`` come back unchanged, with no problems.
    """
    labels = dict(labels or {})
    if str(labels.get('traefik.enable', 'false')).strip().lower() not in ('true', '1', 'yes'):
        return labels, []
    routers, services = [], []
    for key in labels:
        match = _ROUTER_KEY_RE.match(key)
        if match and match.group(1) not in routers:
            routers.append(match.group(1))
        match = _SERVICE_KEY_RE.match(key)
        if match and match.group(1) not in services:
            services.append(match.group(1))
    out = {}
    for key, value in labels.items():
        match = _ROUTER_KEY_RE.match(key)
        if match and _EDGE_DROPPED.match(match.group(2)):
            continue
        out[key] = value
    problems = []
    for router in routers:
        prefix = 'traefik.http.routers.%s.' % router
        if not out.get(prefix + 'rule'):
            problems.append('router %s has no rule: add the label %srule=Host(`<name>`)' % (router, prefix))
        out[prefix + 'entrypoints'] = entrypoint
        out[prefix + 'tls'] = 'true'
        target = out.get(prefix + 'service')
        if not target:
            if len(services) == 1:
                out[prefix + 'service'] = services[0]
            elif len(services) > 1:
                problems.append('router %s does not say which service it routes to: add the label %sservice=<one '
                                'of %s>' % (router, prefix, ', '.join(services)))
            else:
                problems.append('router %s routes to no service: add the label '
                                'traefik.http.services.%s.loadbalancer.server.port=<the port the service listens '
                                'on> (Swarm tasks publish no port)' % (router, router))
    for service in services:
        key = 'traefik.http.services.%s.loadbalancer.server.port' % service
        if not out.get(key):
            problems.append('service %s has no port: add the label %s=<the port the service listens on> (Swarm '
                            'tasks publish no port)' % (service, key))
    for router in routers:
        target = out.get('traefik.http.routers.%s.service' % router)
        if target and '@' not in target and target not in services:
            problems.append('router %s routes to service %s, which no label defines: add the label '
                            'traefik.http.services.%s.loadbalancer.server.port=<port>' % (router, target, target))
    return dict((k, out[k]) for k in sorted(out)), problems


def port_findings(services, name, platform_rules=ERROR):
    """The ports/expose rule, evaluated once: [{level, service, key, message}] for every service of a compose
    file's ``services`` mapping that publishes (``ports``) or exposes (``expose``) ports, services in the file's
    order. ``platform_rules`` (``error`` or ``warning``) is the level of every finding; callers report them (the
    config model) or raise on errors and pass warnings on (stack rendering)."""
    if platform_rules not in PLATFORM_RULES:
        raise StackRuleError('platform_rules must be one of %s (got %r)' % (', '.join(PLATFORM_RULES), platform_rules))
    findings = []
    for svc, conf in (services or {}).items():
        if not isinstance(conf, dict):
            continue
        for key in PORT_KEYS:
            if key in conf:
                findings.append({
                    'level': platform_rules, 'service': svc, 'key': key,
                    'message': 'service %s of stack %s uses "%s": stacks must not publish or expose ports, every '
                               'service is reached through Traefik (declare traefik_labels in phoenix.json)'
                               % (svc, name, key),
                })
    return findings


def environment_view(stack, environment=None, required=True):
    """The settings of one environment of a config-model stack: the stack itself for its load environment
    (``environment`` empty or equal to the stack's), else its entry under ``other_environments``. A missing
    environment raises KeyError naming the ones the model resolved, or gives None when not ``required``."""
    if not stack:
        return {'variables': [], 'files': [], 'services': {}, 'routers': {}}
    if environment in (None, '', stack.get('environment')):
        return stack
    others = stack.get('other_environments') or {}
    if environment in others:
        return others[environment]
    if not required:
        return None
    raise KeyError('stack %s has no settings for environment "%s" (resolved: %s)' % (
        stack.get('name'), environment, ', '.join(sorted([stack.get('environment') or ''] + list(others)))))
