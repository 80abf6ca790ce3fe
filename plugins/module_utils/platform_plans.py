# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's derived plans, computed once from the loaded configuration.

:func:`platform_plans` takes what the inventory plugin hands out (every guest, the stacks resolved for the load
environment, the hypervisor config, the domain) and returns everything the playbooks and roles would otherwise
derive again at play time:

* ``routes``: :func:`routing.route_plan` of every guest and stack (what ``thinkheads.phoenix.phoenix_routes`` gives);
* ``dns_records``: :func:`routing.dns_records` over that plan, with the CA's name from ``step_ca.dns_name``;
* ``firewalls``: each guest's effective firewall (:func:`routing.guest_firewall`: its own rules, the rules of the
  stacks it deploys, the Swarm edge port for Traefik), keyed by the guest ID as text;
* ``endpoints``: the addresses plays connect to (:func:`endpoints`).

The inventory publishes the four once (see plugins/inventory/phoenix.py); the ``platform_plans`` filter gives the
same for an inventory that does not (playbooks/boilerplate.yml binds it then). Pure and deterministic.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing

# the ports the platform's services listen on where plays reach them (the portainer role's portainer_https_port,
# the swarm_edge role's swarm_edge_port)
PORTAINER_PORT = 9443
SWARM_EDGE_PORT = routing.DEFAULT_EDGE_PORT
DEFAULT_PROVISIONER = 'services'
_GROUP_SAFE = re.compile(r'[^A-Za-z0-9_]')


def _group_name(text):
    """The inventory's group suffix for a feature name (as plugins/inventory/phoenix.py names feature groups)."""
    return _GROUP_SAFE.sub('_', str(text)).lower()


def _first(guests, test):
    """The first guest in the given (creation) order that passes ``test``: the first host of the inventory group
    the plays read (templates included, as the group holds them)."""
    for guest in guests:
        if test(guest):
            return guest
    return None


def _summary_ip(summary):
    return (summary or {}).get('ip') or None


def endpoints(guests, hypervisor, plan):
    """Where plays reach the platform's services, as flat text (an empty string where the platform has none).

    ``guests`` in creation order (the inventory's order). Keys:

    * ``ca_guest``, ``ca_host``, ``ca_url``: the first guest with the feature ``step_ca`` (the group
      ``feature_step_ca``), its address and ``https://<address>:9000`` (:func:`routing.ca_url`);
    * ``ca_name``: the CA's DNS name (``step_ca.dns_name`` of the hypervisor config);
    * ``ca_provisioner``: the JWK provisioner certificates are requested with (``step_ca.provisioner_name``, default
      ``services``);
    * ``portainer_guest``, ``portainer_url``: the first Swarm manager (the group ``swarm_managers``) and
      ``https://<address>:9443``, the Portainer API the portainer role serves there by default;
    * ``traefik_guest``, ``traefik_ip``, ``gateway_guest``, ``gateway_ip``: the Traefik guest and the Nginx gateway of
      the route plan.
    """
    step_ca = (hypervisor or {}).get('step_ca') or {}
    ca = _first(guests, lambda g: any(_group_name(f) == 'step_ca' for f in g.get('features') or []))
    ca_host = routing._ip(ca) if ca else None
    manager = _first(guests, lambda g: g.get('swarm_role') == 'manager')
    manager_ip = routing._ip(manager) if manager else None
    traefik = (plan or {}).get('traefik') or {}
    gateway = (plan or {}).get('gateway') or {}
    return {
        'ca_guest': str(ca['id']) if ca else '',
        'ca_host': ca_host or '',
        'ca_url': routing.ca_url(ca_host) if ca_host else '',
        'ca_name': step_ca.get('dns_name') or '',
        'ca_provisioner': step_ca.get('provisioner_name') or DEFAULT_PROVISIONER,
        'portainer_guest': str(manager['id']) if manager else '',
        'portainer_url': 'https://%s:%d' % (manager_ip, PORTAINER_PORT) if manager_ip else '',
        'traefik_guest': str(traefik['id']) if traefik.get('id') is not None else '',
        'traefik_ip': _summary_ip(traefik) or '',
        'gateway_guest': str(gateway['id']) if gateway.get('id') is not None else '',
        'gateway_ip': _summary_ip(gateway) or '',
    }


def platform_plans(guests, stacks=None, hypervisor=None, domain=None):
    """The derived plans of the platform: ``routes``, ``dns_records``, ``firewalls`` and ``endpoints`` (see the module
    description). ``guests``: every guest (templates included; they route nothing), in creation order."""
    guests = [g for g in (guests or []) if isinstance(g, dict) and g.get('id') is not None]
    stacks = stacks or {}
    hypervisor = hypervisor or {}
    plan = routing.route_plan(guests, stacks)
    ca_name = (hypervisor.get('step_ca') or {}).get('dns_name') or None
    records = routing.dns_records(guests, plan=plan, domain=domain, ca_name=ca_name, extra=[])
    firewalls = dict((str(g['id']), routing.guest_firewall(g, stacks, plan=plan, edge_port=SWARM_EDGE_PORT))
                     for g in guests)
    return {'routes': plan, 'dns_records': records, 'firewalls': firewalls,
            'endpoints': endpoints(guests, hypervisor, plan)}
