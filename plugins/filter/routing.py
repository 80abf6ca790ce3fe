# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routing, DNS and firewall filters over the Phoenix configuration model (see module_utils/routing.py).

Each filter is documented in the YAML file of the same name next to this one.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.thinkheads.phoenix.plugins.module_utils import platform_plans as plans
from ansible_collections.thinkheads.phoenix.plugins.module_utils import routing


def _call(name, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except routing.RoutingError as exc:
        raise AnsibleFilterError('%s: %s' % (name, exc)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError('%s: the input is not the Phoenix model this filter expects (%s: %s)'
                                 % (name, type(exc).__name__, exc)) from exc


def phoenix_routes(guests, stacks=None, gateway=None, traefik=None, ca=None):
    return _call('phoenix_routes', routing.route_plan, guests, stacks, gateway=gateway, traefik=traefik, ca=ca)


def traefik_dynamic_config(plan, ca_file=None, cert_resolver=routing.DEFAULT_RESOLVER,
                           entrypoint=routing.DEFAULT_ENTRYPOINT, edge_port=routing.DEFAULT_EDGE_PORT,
                           edge_server_name=None, domain=None, default_cert_file=None, default_key_file=None):
    return _call('traefik_dynamic_config', routing.traefik_dynamic_config, plan, ca_file=ca_file,
                 cert_resolver=cert_resolver, entrypoint=entrypoint, edge_port=edge_port,
                 edge_server_name=edge_server_name, domain=domain, default_cert_file=default_cert_file,
                 default_key_file=default_key_file)


def gateway_hostnames(plan, domain=None, extra=None):
    return _call('gateway_hostnames', routing.gateway_hostnames, plan, domain=domain, extra=extra)


def dns_records(guests, plan=None, domain=None, ca_name=None, extra=None):
    return _call('dns_records', routing.dns_records, guests, plan, domain=domain, ca_name=ca_name, extra=extra)


def dns_hosts_lines(records):
    return _call('dns_hosts_lines', routing.hosts_file_lines, records)


def guest_firewall(guest, stacks=None, plan=None, edge_port=None):
    return _call('guest_firewall', routing.guest_firewall, guest, stacks, plan=plan, edge_port=edge_port)


def ca_url(host, port=None):
    return _call('ca_url', routing.ca_url, host, port=port)


def platform_plans(guests, stacks=None, hypervisor=None, domain=None):
    return _call('platform_plans', plans.platform_plans, guests, stacks, hypervisor=hypervisor, domain=domain)


class FilterModule(object):

    def filters(self):
        return {
            'phoenix_routes': phoenix_routes,
            'traefik_dynamic_config': traefik_dynamic_config,
            'gateway_hostnames': gateway_hostnames,
            'dns_records': dns_records,
            'dns_hosts_lines': dns_hosts_lines,
            'guest_firewall': guest_firewall,
            'ca_url': ca_url,
            'platform_plans': platform_plans,
        }
