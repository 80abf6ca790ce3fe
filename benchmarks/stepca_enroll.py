#!/usr/bin/env python
"""Step-CA enrolment: wall time and CA requests of the step_ca_certificate module against a real step-ca.

Starts a throw-away step-ca (built by lab/tools/build-go-tools.sh) on a free loopback port, then measures:

* ``module issue``: ``ansible localhost -m thinkheads.phoenix.step_ca_certificate`` on an empty folder (new key,
  provisioner key decryption, token, ``POST /1.0/sign``), ansible start-up included;
* ``module no-op``: the same command again (nothing due): must be ``changed=false`` with zero CA requests;
* ``module floor``: ``step_ca_certificate_info`` on the same file, i.e. what the ansible CLI itself costs;
* ``client issue`` / ``client renew``: the module_utils client called in-process (no ansible), the part a
  guest's renewal timer runs.

Request counts come from step-ca's own request log, not from the client's counter. Run from anywhere:
``.venv/bin/python benchmarks/stepca_enroll.py [--repeat 3] [--json out.json]``.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'stepca'))

from stepca_testlib import ADMIN, ADMIN_PASSWORD, STEP, STEP_CA, StepCA, run_module, step_ca  # noqa: E402


def timed(func):
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def summarize(seconds):
    return {'best_s': round(min(seconds), 3), 'median_s': round(statistics.median(seconds), 3), 'runs': len(seconds)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--repeat', type=int, default=3, help='timed runs per measurement (default 3)')
    parser.add_argument('--json', help='also write the results to this file')
    args = parser.parse_args(argv)
    for tool in (STEP, STEP_CA):
        if not os.access(tool, os.X_OK):
            sys.exit('error: %s missing: run lab/tools/build-go-tools.sh first' % tool)

    work = tempfile.mkdtemp(prefix='phx-stepca-bench-')
    ca = StepCA(work)
    ca.init()
    result = run_module('step_ca_provisioner', dict(config=ca.config, name=ADMIN, password=ADMIN_PASSWORD,
                                                    claims={'minTLSCertDuration': '1m', 'defaultTLSCertDuration': '1h'}))
    assert not result.get('failed'), result
    ca.start()
    results = {}
    try:
        issue, noop, floor, requests_noop, requests_issue = [], [], [], [], []
        for run in range(args.repeat):
            folder = os.path.join(work, 'module-%d' % run)
            os.makedirs(folder)
            cert_args = ca.cert_args(folder, 'bench')
            mark = ca.log_mark()
            seconds, first = timed(lambda a=cert_args: run_module('step_ca_certificate', a))
            assert first['action'] == 'issued', first
            issue.append(seconds)
            requests_issue.append(ca.requests_since(mark))
            mark = ca.log_mark()
            seconds, second = timed(lambda a=cert_args: run_module('step_ca_certificate', a))
            assert second['changed'] is False, second
            noop.append(seconds)
            requests_noop.append((ca.requests_since(mark), second['ca_requests']))
            seconds, _info = timed(lambda a=cert_args: run_module('step_ca_certificate_info', dict(path=a['cert_path'])))
            floor.append(seconds)

        client = step_ca.StepCAClient(ca.url, root_path=ca.root)
        client_issue, client_renew = [], []
        folder = os.path.join(work, 'client')
        os.makedirs(folder)
        cert_path, key_path = os.path.join(folder, 'c.crt'), os.path.join(folder, 'c.key')
        for _run in range(args.repeat):
            seconds, (key_pem, leaf, _rest) = timed(lambda: step_ca.issue_certificate(
                client, ADMIN, ADMIN_PASSWORD, 'client.phoenix.test', ['client.phoenix.test'], lifetime='10m'))
            client_issue.append(seconds)
            step_ca.atomic_write(key_path, key_pem)
            step_ca.atomic_write(cert_path, leaf)
            seconds, renewed = timed(lambda: step_ca.renew_if_needed(ca.url, ca.root, cert_path, key_path,
                                                                     threshold='1h'))
            assert renewed is True
            client_renew.append(seconds)

        results = {
            'module issue': dict(summarize(issue), ca_requests=sorted('%s %s' % r for r in requests_issue[0])),
            'module no-op': dict(summarize(noop), ca_requests=sorted('%s %s' % r for r in requests_noop[0][0]),
                                 module_ca_requests=requests_noop[0][1]),
            'module floor (certificate_info)': summarize(floor),
            'client issue (in-process)': summarize(client_issue),
            'client renew (in-process, mTLS)': summarize(client_renew),
        }
        noop_requests = sum(len(r[0]) for r in requests_noop)
    finally:
        ca.stop()

    print('%-34s %8s %9s  %s' % ('measurement', 'best s', 'median s', 'CA requests (step-ca log)'))
    for name, row in results.items():
        requests = row.get('ca_requests')
        print('%-34s %8.3f %9.3f  %s' % (name, row['best_s'], row['median_s'],
                                         '-' if requests is None else (', '.join(requests) or 'none')))
    print('no-op runs: %d requests in step-ca\'s log over %d runs; module ca_requests=%s'
          % (noop_requests, args.repeat, json.dumps(results['module no-op']['module_ca_requests'])))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(results, handle, indent=2)
    return 1 if noop_requests else 0


if __name__ == '__main__':
    sys.exit(main())
