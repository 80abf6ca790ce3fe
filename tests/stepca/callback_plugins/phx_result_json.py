# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only stdout callback: prints each host's module result exactly as the module returned it.

ansible.posix.json overwrites a result's ``action`` key with the task's action name, and step_ca_certificate
returns its own ``action``; this callback keeps the result untouched (diff and invocation included)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'phx_result_json'

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.results = {}

    def _record(self, result, **extra):
        data = dict(result._result)
        data.update(extra)
        self.results[result._host.get_name()] = data

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps(self.results, default=str))
