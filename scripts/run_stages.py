#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run Makefile targets in order as timed stages; end with a table (stage, seconds, result).

    scripts/run_stages.py [--out build/test-times.txt] STAGE...

Each stage is `make STAGE`. `&STAGE` starts it in the background (output to build/stage-STAGE.log, printed when
it is joined) and the run goes on; `wait` joins every background stage (also done at the end). The first failing
stage stops the run: it is marked FAILED, the later ones `not run`, and the exit status is non-zero. The
table is printed and, with --out, written to that file, in every case (also after Ctrl-C). `make test` and
`make check` call this with their stage lists (Makefile).
Standard library only: it runs before the virtualenv exists.
"""

import argparse
import os
import subprocess
import sys
import threading
import time


def table(results, total):
    rows = [('stage', 'seconds', 'result')]
    rows += [(stage, '' if seconds is None else '%.1f' % seconds, result) for stage, seconds, result in results]
    failed = [stage for stage, _seconds, result in results if result not in ('passed', 'not run')]
    rows.append(('total', '%.1f' % total, ('FAILED (%s)' % failed[0]) if failed else 'passed'))
    width = max(len(row[0]) for row in rows)
    lines = ['%-*s  %8s  %s' % (width, stage, seconds, result) for stage, seconds, result in rows]
    lines.insert(1, '%s  %s  %s' % ('-' * width, '-' * 8, '-' * 7))
    lines.insert(len(lines) - 1, lines[1])
    return '\n'.join(lines) + '\n'


def _watch(proc, ended):
    """Record when a background stage ends (its duration does not depend on when it is joined)."""
    proc.wait()
    ended[1] = time.monotonic()


def _join(background, results):
    """Wait for the background stages in start order; their rows keep their own duration. The first
    failure's exit code, or 0."""
    failed = 0
    for stage, proc, log, begin, ended in background:
        code = proc.wait()
        ended[0].join()
        seconds = ended[1] - begin
        print('=== background stage %s ended (exit %d, %.1f s); its output (%s):' % (stage, code, seconds, log),
              flush=True)
        with open(log) as handle:
            sys.stdout.write(handle.read())
        sys.stdout.flush()
        results.append(('&' + stage, seconds, 'passed' if code == 0 else 'FAILED'))
        if code and not failed:
            failed = code if 0 < code < 126 else 1
    del background[:]
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('stages', nargs='+', metavar='STAGE',
                        help='Makefile targets, run in this order (&STAGE: in the background; wait: join them)')
    args = parser.parse_args(argv)
    make = os.environ.get('MAKE') or 'make'
    results = []
    background = []
    started = time.monotonic()
    status = 0
    stages = list(args.stages) + (['wait'] if args.stages[-1] != 'wait' else [])
    for index, stage in enumerate(stages):
        if stage == 'wait':
            if not background:
                continue
            print('=== waiting for the background stages: %s' % ', '.join(b[0] for b in background), flush=True)
            status = _join(background, results)
            if status:
                results += [(rest, None, 'not run') for rest in stages[index + 1:] if rest != 'wait']
                break
            continue
        if stage.startswith('&'):
            name = stage[1:]
            log = os.path.join('build', 'stage-%s.log' % name)
            os.makedirs('build', exist_ok=True)
            print('=== stage %s started in the background (output: %s)' % (name, log), flush=True)
            with open(log, 'w') as handle:
                proc = subprocess.Popen([make, '--no-print-directory', name], stdout=handle, stderr=subprocess.STDOUT)
            ended = [None, None]   # [the thread that waits for the stage, when it ended]
            ended[0] = threading.Thread(target=_watch, args=(proc, ended), daemon=True)
            ended[0].start()
            background.append((name, proc, log, time.monotonic(), ended))
            continue
        print('=== stage %s (%d/%d)' % (stage, index + 1, len(stages)), flush=True)
        begin = time.monotonic()
        try:
            code = subprocess.call([make, '--no-print-directory', stage])
        except KeyboardInterrupt:
            code = 130
        seconds = time.monotonic() - begin
        if code == 0:
            results.append((stage, seconds, 'passed'))
            continue
        results.append((stage, seconds, 'FAILED' if code != 130 else 'interrupted'))
        _join(background, results)
        results += [(rest, None, 'not run') for rest in stages[index + 1:] if rest != 'wait']
        status = code if 0 < code < 126 else 1
        if code == 130:
            status = 130
        break
    text = table(results, time.monotonic() - started)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as handle:
            handle.write(text)
    sys.stdout.write('\n' + text)
    if args.out:
        sys.stdout.write('(written to %s)\n' % args.out)
    return status


if __name__ == '__main__':
    sys.exit(main())
