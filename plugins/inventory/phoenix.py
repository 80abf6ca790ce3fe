# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: phoenix
short_description: Phoenix platform guests from the Phoenix JSON configs
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Reads the Phoenix configuration (C(phoenix_hypervisor_config.json), C(phoenix_lxc_configs.json),
    C(phoenix_vm_configs.json), C(phoenix_stacks_config.json), C(certificate-manifest.json) and
    C(stacks/*/phoenix.json) with each stack's compose file), validates it once and turns it into hosts,
    groups and host variables.
  - Every guest becomes a host named by its guest ID, so C(ansible-playbook create.yml -l 801) targets guest 801.
    The Proxmox VE hypervisor is one more host (see O(hypervisor_host)).
  - Any configuration error fails the inventory with a report that names every problem (file, JSON path,
    message). Warnings are shown but do not fail. No network call is made.
  - "Groups: C(phoenix) (all guests), C(hypervisor), C(lxc), C(vm), C(templates), C(feature_<feature>),
    C(portainer_<role>), C(swarm_managers), C(swarm_workers), C(gpu), C(vllm), C(traefik_services),
    C(stack_hosts), C(node_<name>) (the guests placed on a Proxmox node: the guest's C(node), else the hypervisor
    config's C(cluster.node); none without either)."
  - "Guest host variables: C(ansible_host) (the guest IP without prefix length), C(phoenix_guest) (the normalized
    guest: its C(id), C(type) and C(order), the position in dependency order, among the rest)."
  - "C(phoenix_guest) is derived when a play reads it: each guest carries its normalized guest once, as compact JSON
    text in C(phoenix_guest_json) (written so that it holds no Jinja start string: a C({) of a string value that
    would begin one is the JSON escape C(\\u007b), so templating it yields it unchanged and config text is never
    templated), and the C(phoenix) group holds the one template
    C({{ phoenix_guest_json | ansible.builtin.from_json }}). Playbooks, roles and C(hostvars[...].phoenix_guest) see
    the same dict as before; only the raw C(ansible-inventory --list) output shows the JSON text and the template.
    This keeps every host's variables a few flat strings, so listing and limiting thousands of guests costs about
    what ansible-core costs for as many plain hosts. O(compose), O(groups) and O(keyed_groups) see the dict."
  - "The normalized guest keeps every field of the config file except those it replaces: C(network) (from
    C(network_config) and C(mac_address)), C(clone_from) (from C(clone_from_ctid)/C(clone_from_vmid)) and
    C(gpus) (from C(gpu_assignment)); C(node) is the node the guest is placed on, or null (the node the
    playbooks connect to)."
  - "Hypervisor host variables: C(phoenix_hypervisor) (the normalized hypervisor config), C(phoenix_stacks) (every
    stack, resolved for O(environment)), C(phoenix_certificates) and C(phoenix_guest_order) (guest IDs in creation
    order). The data is stored on this one host only."
  - "The platform facts on C(all): C(phoenix_hypervisor), C(phoenix_stacks) and C(phoenix_certificates) are one
    short template each (C({{ hostvars['<hypervisor_host>'].phoenix_stacks }})), so every host, guest or not, reads
    them as the hypervisor's dicts under the same names. Plays and roles use these names directly; only the raw
    C(ansible-inventory --list) output shows the templates on the other hosts."
  - "The derived plans, computed once with the model (C(plugins/module_utils/platform_plans.py), the same as
    P(thinkheads.phoenix.platform_plans#filter)) and kept in its cache: C(phoenix_routes) (the route plan of every
    guest and stack, P(thinkheads.phoenix.phoenix_routes#filter)) and C(phoenix_dns_records)
    (P(thinkheads.phoenix.dns_records#filter)), stored on the hypervisor host as JSON text (C(phoenix_routes_json),
    C(phoenix_dns_records_json)) and decoded where read through one short template each on C(all);
    C(phoenix_endpoints) (C(ca_url), C(ca_provisioner), C(ca_name), C(portainer_url), C(traefik_ip), C(gateway_ip)
    and the guest IDs behind them), published like the platform facts; C(phoenix_guest_firewall_plan) on each guest
    (its own rules, the rules of the stacks it deploys, the Swarm edge port 8443 from Traefik:
    P(thinkheads.phoenix.guest_firewall#filter)): one template on the C(phoenix) group that decodes the guest's
    C(phoenix_guest_firewall_json) where its stacks or the routes add rules, else gives the firewall of its own rules."
  - "Variables on C(all), kept small because C(ansible-inventory --list) copies them into every host:
    C(phoenix_domain), C(phoenix_environment) and C(phoenix_platform_rules) (O(platform_rules), the level the
    P(thinkheads.phoenix.render_stack#filter) filter gives the ports/expose rule at deploy time)."
  - "The hypervisor host holds C(phoenix_feature_roles), and the C(phoenix) group reads it through one template:
    feature -> role for the features that create.yml's feature play applies, taken from the collection's feature
    registry (C(plugins/module_utils/config/features.py))."
  - The inventory file name must be C(phoenix.yml), C(phoenix.yaml) or end with C(.phoenix.yml) / C(.phoenix.yaml).
  - With O(cache=true) the validated model is kept by the cache plugin and reused only while every input file and
    the collection's own code (C(plugins/module_utils), this plugin) are unchanged (names, sizes, mtimes). A cache
    directory that cannot be used is reported as a warning; the configs are then validated on every run.
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: The name of this plugin; makes the file an inventory source for it.
    required: true
    type: str
    choices: ['thinkheads.phoenix.phoenix']
  config_dir:
    description:
      - Directory holding the Phoenix JSON configs.
      - A relative path is taken relative to the directory of the inventory file.
    type: str
    required: true
    env:
      - name: PHOENIX_CONFIG_DIR
  stacks_dir:
    description:
      - Directory holding one sub-directory per Docker stack (C(docker-compose.yml) and C(phoenix.json)).
      - A relative path is taken relative to the directory of the inventory file.
      - Defaults to the C(stacks) directory next to O(config_dir).
    type: str
    env:
      - name: PHOENIX_STACKS_DIR
  environment:
    description: Stack environment to resolve (variables, files, Traefik labels, firewall rules).
    type: str
    default: production
    env:
      - name: PHOENIX_ENVIRONMENT
  platform_rules:
    description:
      - Severity of platform-policy findings, for example a stack compose file that publishes C(ports)
        or C(expose) instead of being routed through Traefik.
      - V(error) fails the inventory; V(warning) reports them and goes on, which suits configs being migrated.
    type: str
    choices: ['error', 'warning']
    default: warning
    env:
      - name: PHOENIX_PLATFORM_RULES
  hypervisor_host:
    description: Inventory name of the Proxmox VE hypervisor host (member of the C(hypervisor) group).
    type: str
    default: phoenix-hypervisor
'''

EXAMPLES = r'''
# inventory/phoenix.yml
plugin: thinkheads.phoenix.phoenix
config_dir: ../etc
stacks_dir: ../stacks
platform_rules: error

# reference.phoenix.yml: an existing deployment's configs, with constructed groups
# plugin: thinkheads.phoenix.phoenix
# config_dir: /usr/local/phoenix_hypervisor/etc
# stacks_dir: /usr/local/phoenix_hypervisor/stacks
# environment: production
# keyed_groups:
#   - key: phoenix_guest.portainer_role
#     prefix: role
# compose:
#   phoenix_cores: phoenix_guest.cores
# groups:
#   big_memory: phoenix_guest.memory_mb | default(0) > 32000
'''

import json
import os
import re

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.template import trust_as_template

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.features import roles as feature_roles
from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import (
    HYPERVISOR_FILE, PhoenixConfig, load_config,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.platform_plans import platform_plans
from ansible_collections.thinkheads.phoenix.plugins.module_utils.routing import RoutingError, guest_firewall

FILE_NAMES = ('phoenix.yml', 'phoenix.yaml')
FILE_SUFFIXES = ('.phoenix.yml', '.phoenix.yaml')
_GROUP_SAFE = re.compile(r'[^A-Za-z0-9_]')
# 4: the model is kept as one JSON text (the cache plugin's decoder visits every object of a nested value; a text is one
# object, decoded by the json module's C decoder)
CACHE_FORMAT = 4
# The code that builds the model: a cached model is also dropped when any of it changes (an upgraded collection).
_PLUGINS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE_DIRS = (os.path.join(_PLUGINS_DIR, 'module_utils'),)
CODE_FILES = (os.path.abspath(__file__),)
# The one trusted template of the inventory: every guest's phoenix_guest, decoded from its own phoenix_guest_json.
# It reads only the host's own variables, so it also resolves through hostvars['<guest>'] from another host.
GUEST_TEMPLATE = '{{ phoenix_guest_json | ansible.builtin.from_json }}'
# The platform facts plays read: stored once, on the hypervisor host; every other host reads them through one short
# template on 'all' (a nested value on 'all' would be copied into every host's listing).
PLATFORM_FACTS = ('phoenix_hypervisor', 'phoenix_stacks', 'phoenix_certificates')
# The derived plans (module_utils/platform_plans.py), computed once with the model and kept in its cache. The route
# plan and the DNS records are stored on the hypervisor host as compact JSON text (a nested value costs ansible-core
# per container, a string once) and decoded where read, through one template each on 'all'; the endpoints are a few
# strings, published like the platform facts. A guest whose firewall gains rules from its stacks or the routes carries
# that firewall as JSON text (never templated); one template on the 'phoenix' group decodes it, or, for every other
# guest, gives the firewall of its own rules (the same filter over phoenix_guest alone: exactly what the full plan
# holds for that guest), so most guests list nothing more.
PLAN_TEXTS = (('phoenix_routes', 'routes'), ('phoenix_dns_records', 'dns_records'))
FIREWALL_TEMPLATE = ('{{ phoenix_guest_firewall_json | ansible.builtin.from_json if phoenix_guest_firewall_json is defined'
                     ' else phoenix_guest | thinkheads.phoenix.guest_firewall }}')


# A config value that cannot hold a template by its characters alone (no Jinja start string, which always begins with
# '{', and no '#jinja2:' override header): IP addresses, DNS names, user and provisioner names, the guest type.
_INERT_TEXT = re.compile(r'[A-Za-z0-9._:@/+=-]*\Z')


def _inert(value):
    """A string made only of characters no template is written with, marked as needing no protection: templating it
    yields it unchanged, so ansible-inventory lists it as a plain string instead of an '__ansible_unsafe' object (one
    container less to copy and encode per value and host). Any other value stays as it is: never templated."""
    if isinstance(value, str) and _INERT_TEXT.match(value):
        return trust_as_template(value)
    return value


def _json_text(value):
    return json.dumps(value, separators=(',', ':'))


# In compact JSON text a '{' that opens an object is followed by '"' or '}': one followed by '{', '%' or '#' (a Jinja
# start string) is inside a string value.
_START_STRING_BRACE = re.compile(r'\{(?=[{%#])')


def _inert_json(value):
    """Compact JSON text of a value that no template engine reads as a template: every '{' of a string value that
    would begin a Jinja start string is written as the JSON escape \\u007b, which decodes to the same value. The text
    then holds no start string and begins with '{' or '[', so it is marked as needing no protection (see _inert): plays
    decode it to the same dict, and ansible-inventory lists it as a plain string."""
    return trust_as_template(_START_STRING_BRACE.sub(r'\\u007b', _json_text(value)))


def _published_plans(plans, guests):
    """platform_plans' result as the inventory stores it (and caches it): JSON text but for the endpoints; a firewall
    only where it differs from the guest's own (guest_firewall of the guest alone, what FIREWALL_TEMPLATE falls back
    to)."""
    firewalls = {}
    for guest in guests:
        key = str(guest['id'])
        if plans['firewalls'][key] != guest_firewall(guest):
            firewalls[key] = _json_text(plans['firewalls'][key])
    return {'routes': _json_text(plans['routes']), 'dns_records': _json_text(plans['dns_records']),
            'endpoints': plans['endpoints'], 'firewalls': firewalls}


def _group_name(text):
    return _GROUP_SAFE.sub('_', str(text)).lower()


def _fingerprint(config_dir, stacks_dir, options, code_dirs=CODE_DIRS, code_files=CODE_FILES):
    """Names, sizes and mtimes of every input file and of the code that reads them: a cached model is used only
    while this is unchanged."""
    entries = []
    for path in code_files:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        entries.append([path, stat.st_size, stat.st_mtime_ns])
    code_roots = set(code_dirs)
    for root in (config_dir, stacks_dir) + tuple(code_dirs):
        if not root or not os.path.isdir(root):
            continue
        is_code = root in code_roots
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not (is_code and d == '__pycache__'))
            for name in sorted(filenames):
                if is_code and not name.endswith('.py'):
                    continue  # compiled files come and go with every interpreter that imports the code
                path = os.path.join(dirpath, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                entries.append([path, stat.st_size, stat.st_mtime_ns])
    return {'format': CACHE_FORMAT, 'options': options, 'files': entries}


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):

    NAME = 'thinkheads.phoenix.phoenix'

    def verify_file(self, path):
        if not super(InventoryModule, self).verify_file(path):
            return False
        base = os.path.basename(path)
        return base in FILE_NAMES or base.endswith(FILE_SUFFIXES)

    def _resolve_dir(self, value, inventory_path):
        if value is None:
            return None
        value = os.path.expanduser(os.path.expandvars(str(value)))
        if not os.path.isabs(value):
            value = os.path.join(os.path.dirname(os.path.abspath(inventory_path)), value)
        return os.path.normpath(value)

    def _load_model(self, path, cache):
        config_dir = self._resolve_dir(self.get_option('config_dir'), path)
        stacks_dir = self._resolve_dir(self.get_option('stacks_dir'), path)
        if stacks_dir is None:
            stacks_dir = os.path.join(os.path.dirname(config_dir), 'stacks')
        environment = self.get_option('environment')
        platform_rules = self.get_option('platform_rules')
        if not os.path.isfile(os.path.join(config_dir, HYPERVISOR_FILE)):
            raise AnsibleParserError('Phoenix inventory %s: no %s in config_dir %s' % (path, HYPERVISOR_FILE, config_dir))
        options = {'config_dir': config_dir, 'stacks_dir': stacks_dir, 'environment': environment,
                   'platform_rules': platform_rules}

        cache_key = self.get_cache_key(path)
        use_cache = cache and self.get_option('cache')
        update_cache = cache is False and self.get_option('cache')
        fingerprint = None
        if use_cache:
            fingerprint = _fingerprint(config_dir, stacks_dir, options)
            try:
                cached = self._cache[cache_key]
            except KeyError:
                cached = None
            if isinstance(cached, dict) and cached.get('fingerprint') == fingerprint:
                config = PhoenixConfig.from_dict(json.loads(cached['model']))
                return config, cached.get('plans') or self._plans(config)
            update_cache = True

        config = load_config(config_dir, stacks_dir, environment=environment, platform_rules=platform_rules)
        if config.report.errors:
            # ansible-core prints a failed source's exception twice (the warning, then "caused by"): the report
            # goes out once here, and the exception only sums it up.
            self.display.error('Phoenix inventory %s is invalid.\n%s' % (path, config.report.text()),
                               wrap_text=False)
            raise AnsibleParserError('Phoenix inventory %s is invalid: %d error(s), listed above'
                                     % (path, len(config.report.errors)))
        plans = self._plans(config)
        if update_cache:
            if fingerprint is None:
                fingerprint = _fingerprint(config_dir, stacks_dir, options)
            # the derived plans are kept with the model: they follow from it and from the same code
            self._cache[cache_key] = {'fingerprint': fingerprint, 'model': _json_text(config.as_dict()), 'plans': plans}
        return config, plans

    def _plans(self, config):
        """The derived plans of the model (module_utils/platform_plans.py), or None when they cannot be derived."""
        try:
            guests = config.ordered_guests()
            return _published_plans(platform_plans(guests, config.stacks, config.hypervisor, config.domain), guests)
        except RoutingError as exc:
            # nothing published: the roles' defaults and the boilerplate fall back to the filters, which report it
            self.display.warning('Phoenix inventory: the derived plans are not published: %s' % exc)
            return None

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        try:
            self._read_config_data(path)
        except AnsibleError as exc:
            # Only the cache plugin's set-up comes after the options are read: a cache directory that cannot be
            # created or written costs the cache, not the inventory.
            if not self._options.get('cache'):
                raise
            self.display.warning('Phoenix inventory %s: cache not usable, the configs are validated on every run: %s'
                                 % (path, exc))
            self.set_option('cache', False)
        config, plans = self._load_model(path, cache)
        if config.report.warnings:
            self.display.warning('Phoenix configuration warnings:\n%s' % '\n'.join(
                '  %s' % finding for finding in config.report.sorted_warnings()))
        self._populate(config, plans)

    def _populate(self, config, plans=None):
        inv = self.inventory
        strict = self.get_option('strict')
        for group in ('phoenix', 'hypervisor', 'lxc', 'vm', 'templates', 'gpu', 'vllm', 'traefik_services',
                      'stack_hosts', 'swarm_managers', 'swarm_workers'):
            inv.add_group(group)
        # Only small values go on 'all': ansible-inventory --list copies them into every host.
        inv.set_variable('all', 'phoenix_domain', _inert(config.domain))
        inv.set_variable('all', 'phoenix_environment', config.environment)
        # the stack rules' one switch, for the plays that render stacks (same level as the model's findings)
        inv.set_variable('all', 'phoenix_platform_rules', self.get_option('platform_rules'))
        # the JWK provisioner every certificate request names (step_ca.provisioner_name of the hypervisor config)
        inv.set_variable('all', 'phoenix_ca_provisioner',
                         _inert((config.hypervisor.get('step_ca') or {}).get('provisioner_name') or 'services'))
        # phoenix_guest: one template on the group, resolved per host from that host's phoenix_guest_json.
        inv.set_variable('phoenix', 'phoenix_guest', trust_as_template(GUEST_TEMPLATE))
        guests = config.ordered_guests()

        hyp_name = self.get_option('hypervisor_host')
        inv.add_host(hyp_name, group='hypervisor')
        hyp_ip = (config.hypervisor.get('network_normalized') or {}).get('ip')
        if hyp_ip:
            inv.set_variable(hyp_name, 'ansible_host', _inert(hyp_ip))
        inv.set_variable(hyp_name, 'phoenix_hypervisor', config.hypervisor)
        inv.set_variable(hyp_name, 'phoenix_stacks', config.stacks)
        inv.set_variable(hyp_name, 'phoenix_certificates', config.certificates)
        inv.set_variable(hyp_name, 'phoenix_guest_order', [g['id'] for g in guests])
        # feature -> role for create.yml's feature play (the feature registry): kept once, on the hypervisor, and
        # read by the guests through one template on 'phoenix' (--list copied the dict into every guest, about a
        # tenth of its encoding work per guest)
        inv.set_variable(hyp_name, 'phoenix_feature_roles', feature_roles('features'))
        inv.set_variable('phoenix', 'phoenix_feature_roles',
                         trust_as_template('{{ hostvars[%s].phoenix_feature_roles }}' % json.dumps(hyp_name)))
        published = PLATFORM_FACTS
        if plans is not None:
            inv.set_variable(hyp_name, 'phoenix_endpoints', plans['endpoints'])
            published += ('phoenix_endpoints',)
            for fact, key in PLAN_TEXTS:
                inv.set_variable(hyp_name, '%s_json' % fact, plans[key])
                inv.set_variable('all', fact, trust_as_template(
                    '{{ hostvars[%s].%s_json | ansible.builtin.from_json }}' % (json.dumps(hyp_name), fact)))
            inv.set_variable('phoenix', 'phoenix_guest_firewall_plan', trust_as_template(FIREWALL_TEMPLATE))
        for fact in published:
            # on the hypervisor itself its host variable wins over the group's template
            inv.set_variable('all', fact, trust_as_template('{{ hostvars[%s].%s }}' % (json.dumps(hyp_name), fact)))
        self._construct(hyp_name, strict)

        for guest in guests:
            name = str(guest['id'])
            inv.add_host(name, group='phoenix')
            inv.add_host(name, group=guest['type'])
            if guest['is_template']:
                inv.add_host(name, group='templates')
            if guest.get('node'):
                inv.add_host(name, group=inv.add_group('node_%s' % _group_name(guest['node'])))
            for feature in guest['features']:
                group = inv.add_group('feature_%s' % _group_name(feature))
                inv.add_host(name, group=group)
            if guest['portainer_role'] != 'none':
                group = inv.add_group('portainer_%s' % _group_name(guest['portainer_role']))
                inv.add_host(name, group=group)
            if guest['swarm_role'] == 'manager':
                inv.add_host(name, group='swarm_managers')
            elif guest['swarm_role'] == 'worker':
                inv.add_host(name, group='swarm_workers')
            if guest['gpus']:
                inv.add_host(name, group='gpu')
            if 'vllm' in guest['features']:
                inv.add_host(name, group='vllm')
            if guest['traefik_service']:
                inv.add_host(name, group='traefik_services')
            if guest['docker_stacks']:
                inv.add_host(name, group='stack_hosts')
            if guest['network']['ip']:
                inv.set_variable(name, 'ansible_host', _inert(guest['network']['ip']))
            user = (guest.get('user_config') or {}).get('username')
            if user:
                inv.set_variable(name, 'ansible_user', _inert(user))
            # One flat string instead of a nested dict: ansible-core copies, tags and serializes a nested value
            # container by container, which cost about 3x its own per-host work at 5,000 guests.
            inv.set_variable(name, 'phoenix_guest_json', _inert_json(guest))
            if plans is not None and name in plans['firewalls']:
                inv.set_variable(name, 'phoenix_guest_firewall_json', plans['firewalls'][name])
            self._construct(name, strict, guest)

    def _construct(self, name, strict, guest=None):
        if not (self.get_option('compose') or self.get_option('groups') or self.get_option('keyed_groups')):
            return
        host = self.inventory.get_host(name)
        # compose, groups and keyed_groups see phoenix_guest as the dict the playbooks see
        extra = {'phoenix_guest': guest} if guest is not None else {}
        hostvars = dict(host.get_vars(), **extra)
        self._set_composite_vars(self.get_option('compose'), hostvars, name, strict=strict)
        hostvars = dict(host.get_vars(), **extra)
        self._add_host_to_composed_groups(self.get_option('groups'), hostvars, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), hostvars, name, strict=strict)
