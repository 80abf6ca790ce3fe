# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: plan
type: aggregate
short_description: One table of every change a check-mode run would make (the platform plan)
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - In check mode (C(--check), best with C(--diff)) it collects every changed task result and ends the run with one
    table, C(HOST | KIND | CHANGE | BEFORE | AFTER), like C(terraform plan) - for example
    C(ansible-playbook playbooks/site.yml --check --diff) or C(ansible-playbook playbooks/plan.yml --check --diff).
  - Kinds come from the module (C(proxmox_guest) guest, C(proxmox_lxc_raw) guest, C(proxmox_firewall) firewall,
    C(portainer_stack) stack, C(step_ca_certificate) certificate, ...), else from the role whose task it is
    (C(dns) dns, C(traefik) and C(swarm_edge) route, C(nginx_gateway) gateway, C(step_certificates) certificate, ...).
  - Changes come from each result's C(diff) (a row per changed config key, firewall rule or changed line of a file;
    for a stack, a row per changed environment variable, C(NAME env.VARIABLE), and per changed compose line,
    C(NAME compose[LINE])), else from its C(changes); a changed task that reports neither is listed as
    C(changed (no diff)).
  - Outside check mode it prints nothing.
  - Enabled for the collection's playbooks by the checkout's C(ansible.cfg) (C(callbacks_enabled)); elsewhere set
    C(ANSIBLE_CALLBACKS_ENABLED=thinkheads.phoenix.plan) or add it to C(callbacks_enabled).
requirements:
  - enabled in callbacks_enabled
'''

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.thinkheads.phoenix.plugins.plugin_utils.plan import plan_rows, render_table


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'thinkheads.phoenix.plan'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.rows = []
        self.failed_hosts = set()
        self.playbook = False       # ad-hoc commands (ansible -m) get no plan

    def v2_playbook_on_start(self, playbook):
        # ad-hoc commands run a playbook of their own, named so by ansible's adhoc CLI
        self.playbook = getattr(playbook, '_file_name', None) != '__adhoc_playbook__'

    def _check_mode(self):
        return bool((context.CLIARGS or {}).get('check'))

    def _record(self, result, label=''):
        res = result._result
        if 'results' in res:
            return          # a loop: each item was recorded by v2_runner_item_on_ok
        task = result._task
        role = task._role.get_name() if getattr(task, '_role', None) else None
        action = getattr(task, 'resolved_action', None) or task.action
        self.rows.extend(plan_rows(result._host.get_name(), action, role, task.get_name(), res, label))

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_item_on_ok(self, result):
        label = self._get_item_label(result._result)
        self._record(result, '' if label is None else str(label))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self.failed_hosts.add(result._host.get_name())

    def v2_runner_on_unreachable(self, result):
        self.failed_hosts.add(result._host.get_name())

    def v2_playbook_on_stats(self, stats):
        if not (self.playbook and self._check_mode()):
            return
        text = render_table(self.rows)
        if self.failed_hosts:
            text += ('\nThe plan is incomplete: %s failed or could not be reached'
                     % ', '.join(sorted(self.failed_hosts)))
        self._display.banner('PLAN')
        self._display.display(text)
