# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the molecule scenarios' testinfra tests (each test file puts molecule/ on sys.path).

wait_for, wait_equal (tests/unit/phoenix_testlib.py): a check that follows a reload, restart, renewal, deploy or
convergence polls with a deadline and, when it gives up, fails with the last value it saw.

assert_no_service_errors: a scenario that drives a service also fails when that service logged an error during the
scenario (the instances are created fresh by each scenario, so their whole journal and log files are the
scenario's). A message a test provokes on purpose is allowed by that test, with a comment, through ``allowed``.
"""

import os
import re
import sys

# The polling helpers are the ones the pytest suites under tests/ use.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'unit'))

from phoenix_testlib import wait_equal, wait_for  # noqa: E402,F401 pylint: disable=unused-import

# Log sources per service: the journal unit, a log file, the patterns of an error line, and the error lines that are
# no finding in any scenario (ignored). Journal lines at priority err or worse count whatever their text.
SERVICES = {
    # Traefik's common log format writes "ERR"/"FTL"/"PNC"; the json format level=error.
    'traefik': {'unit': 'traefik.service', 'errors': [r'\b(ERR|FTL|PNC)\b', r'level=(error|fatal|panic)']},
    # nginx writes [level] to its error log, and to the journal (stderr) when it fails to start or reload.
    'nginx': {'unit': 'nginx.service', 'file': '/var/log/nginx/error.log', 'errors': [r'\[(emerg|alert|crit|error)\]']},
    # step-ca logs with logrus (level=...); Go's fatal errors start with "panic:" or "fatal error:".
    'step-ca': {'unit': 'step-ca.service', 'errors': [r'level=(error|fatal|panic)', r'^panic:', r'^fatal error:']},
    # The renewal timer's service (roles/step_certificates/files/phoenix_cert_renew.py).
    'phoenix-cert-renew': {'unit': 'phoenix-cert-renew.service',
                           'errors': [r'renewal failed', r': hook .* (failed|timed out|could not run)', r'^error: ',
                                      r'^failed: ', r'Traceback']},
    # dnsmasq logs through syslog: its errors have priority err (counted for every unit) and say so.
    'dnsmasq': {'unit': 'dnsmasq.service', 'errors': [r'\b(FAILED|failed to|error)\b']},
    # Portainer (zerolog: "ERR", level=error) or its test double (a Python traceback).
    'portainer': {'unit': 'portainer.service', 'errors': [r'\b(ERR|FTL)\b', r'level=(error|fatal)', r'Traceback']},
    'docker': {'unit': 'docker.service', 'errors': [r'level=(error|fatal|panic)'], 'ignored': [
        # dockerd in a lab VM container: the kernel settings a container cannot read or write.
        r'error reading the kernel parameter', r'/proc/sys/\S+: read-only file system', r'default vlan',
        # dockerd stopping for a restart (the docker role's handler): containerd's event stream closes.
        r'msg="Failed to get event" error="rpc error: code = Unavailable desc = transport is closing"',
    ]},
    # vLLM (uvicorn/vLLM logging) or its test double.
    'vllm': {'unit': 'vllm.service', 'errors': [r'\bERROR\b', r'Traceback']},
}


# Colour codes (Traefik colours its log even when it goes to the journal) would hide the level from the patterns.
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


def service_error_lines(host, service, until=None):
    """Every error line the service logged on ``host``, prefixed by where it was found; with ``until`` (UNIX time),
    only the journal before then (log files are read whole)."""
    source = SERVICES[service]
    patterns, ignored = source['errors'], source.get('ignored', [])

    def lines(text):
        cleaned = [ANSI.sub('', line) for line in text.splitlines() if line.strip()]
        return [line for line in cleaned if not any(re.search(p, line) for p in ignored)]

    def matching(text):
        return [line for line in lines(text) if any(re.search(p, line) for p in patterns)]

    found = []
    unit, path = source.get('unit'), source.get('file')
    if unit:
        journal = 'journalctl --no-pager --quiet -o cat -u %s' % unit + (' --until @%d' % until if until else '')
        found += ['%s: %s' % (unit, line) for line in matching(host.run(journal).stdout)]
        severe = lines(host.run(journal + ' -p err').stdout)
        found += ['%s (priority err): %s' % (unit, line) for line in severe
                  if not any(re.search(p, line) for p in patterns)]
    if path and host.file(path).exists:
        found += ['%s: %s' % (path, line) for line in matching(host.file(path).content_string)]
    return found


def assert_no_service_errors(host, services, allowed=(), until=None):
    """Fail with every error line that one of ``services`` logged (before ``until``, see service_error_lines) and
    that no pattern in ``allowed`` matches."""
    errors = [line for service in services for line in service_error_lines(host, service, until)
              if not any(re.search(a, line) for a in allowed)]
    assert not errors, 'errors logged during the scenario:\n' + '\n'.join(errors[:50])
