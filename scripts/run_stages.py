#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run Makefile targets in order as timed stages; end with a table (stage, seconds, busy, cpu, result).

    scripts/run_stages.py [--out build/test-times.txt] STAGE...

Each stage is `make STAGE`. `&A+B+...` starts a lane in the background: its stages run one after the other (output to
build/stage-<A>.log, printed when the lane is joined) while the run goes on; `&A+B@X,Y` is a lane that first waits for
the lanes holding the stages X and Y (and runs nothing if one of them failed). `wait` joins every lane (also done at
the end); `wait@X,Y` joins only the lanes holding X and Y. The first failing stage stops the run: it is marked FAILED,
the later ones `not run`, and the exit status is non-zero; lanes already started are joined first, so their rows are
complete. The table is printed and, with --out, written to that file, in every case (also after Ctrl-C).

Every stage sees PHOENIX_STAGE_RUN_DIR, a folder of this run (removed at its end): stages that share work between
lanes keep their claims there (the molecule target).

`busy` is how much of the machine's CPU (all cores, from /proc/stat) was in use while the stage ran: a stage that
waits (on containers, a CA, a Swarm) shows a low figure and is a candidate for a background lane. `cpu` is the
CPU-seconds (user + system) the stage's own processes used (make and every descendant it waited for: pytest, Ansible,
the modules it ran on this machine); the processes of containers (lab guests, molecule instances) are the Docker
engine's children and are not counted. The machine is shared by the lanes, so a stage's seconds depend on what ran
beside it, while its cpu is its own cost: the figure to cut when every core is busy.
`make test` and `make check` call this with their stage lists (Makefile).
Standard library only: it runs before the virtualenv exists.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def cpu_counters():
    """(busy, total) jiffies of all CPUs since boot, or None where /proc/stat is missing."""
    try:
        with open('/proc/stat') as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    total = sum(fields[:8])                                      # guest time is already in user/nice
    return total - idle, total


def busy_share(before, after):
    """The share of the machine's CPU used between two cpu_counters() readings, as '57%' (or '')."""
    if not before or not after or after[1] <= before[1]:
        return ''
    return '%d%%' % round(100.0 * (after[0] - before[0]) / (after[1] - before[1]))


def table(results, total, total_busy=''):
    """The table of RESULTS, rows of (stage, seconds, busy, cpu, result); the total row has the whole run's busy."""
    rows = [('stage', 'seconds', 'busy', 'cpu', 'result')]
    rows += [(stage, '' if seconds is None else '%.1f' % seconds, busy, '' if cpu is None else '%.0f' % cpu, result)
             for stage, seconds, busy, cpu, result in results]
    failed = [row[0] for row in results if row[4] not in ('passed', 'not run')]
    cpu_sum = sum(row[3] for row in results if row[3] is not None)
    rows.append(('total', '%.1f' % total, total_busy, '%.0f' % cpu_sum, ('FAILED (%s)' % failed[0]) if failed else 'passed'))
    width = max(len(row[0]) for row in rows)
    lines = ['%-*s  %8s  %4s  %6s  %s' % ((width,) + row) for row in rows]
    lines.insert(1, '%s  %s  %s  %s  %s' % ('-' * width, '-' * 8, '-' * 4, '-' * 6, '-' * 7))
    lines.insert(len(lines) - 1, lines[1])
    return '\n'.join(lines) + '\n'


def call(cmd, **kwargs):
    """Run CMD to its end; (exit code, CPU-seconds of it and of the descendants it waited for)."""
    proc = subprocess.Popen(cmd, **kwargs)
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def run_stage(make, stage, log=None):
    """`make STAGE` (into LOG when given); (exit code, seconds, busy, cpu)."""
    begin, counters, cpu = time.monotonic(), cpu_counters(), None
    try:
        if log is None:
            code, cpu = call([make, '--no-print-directory', stage])
        else:
            with open(log, 'a') as handle:
                handle.write('=== stage %s\n' % stage)
                handle.flush()
                code, cpu = call([make, '--no-print-directory', stage], stdout=handle, stderr=subprocess.STDOUT)
    except KeyboardInterrupt:
        code = 130
    return code, time.monotonic() - begin, busy_share(counters, cpu_counters()), cpu


class Lane(threading.Thread):
    """Stages run one after the other in the background; rows as (stage, seconds, busy, cpu, result)."""

    def __init__(self, make, stages, after=()):
        super().__init__(daemon=True)
        self.make, self.stages, self.after = make, stages, list(after)
        self.log = os.path.join('build', 'stage-%s.log' % stages[0])
        self.rows, self.code = [], 0

    def run(self):
        for lane in self.after:
            lane.join()
        if any(lane.code for lane in self.after):
            with open(self.log, 'a') as handle:
                handle.write('=== not run: the lane %s failed\n' % ', '.join(
                    '+'.join(lane.stages) for lane in self.after if lane.code))
            self.rows += [('&' + stage, None, '', None, 'not run') for stage in self.stages]
            return
        for index, stage in enumerate(self.stages):
            code, seconds, busy, cpu = run_stage(self.make, stage, self.log)
            self.rows.append(('&' + stage, seconds, busy, cpu, 'passed' if code == 0 else 'FAILED'))
            if code:
                self.code = code if 0 < code < 126 else 1
                self.rows += [('&' + rest, None, '', None, 'not run') for rest in self.stages[index + 1:]]
                return


def holding(lanes, names):
    """The lanes that hold one of the stages NAMES (a comma-separated string), in start order."""
    wanted = set(names.split(','))
    unknown = wanted - {stage for lane in lanes for stage in lane.stages}
    if unknown:
        raise SystemExit('run_stages: no lane started before holds %s' % ', '.join(sorted(unknown)))
    return [lane for lane in lanes if wanted & set(lane.stages)]


def join(lanes, results, only=None):
    """Wait for the lanes (or ONLY those) in start order and add their rows; the first failure's exit code, or 0."""
    failed = 0
    for lane in list(only if only is not None else lanes):
        while lane.is_alive():
            lane.join(1)
        print('=== background lane %s ended (exit %d); its output (%s):' % ('+'.join(lane.stages), lane.code, lane.log),
              flush=True)
        with open(lane.log) as handle:
            sys.stdout.write(handle.read())
        sys.stdout.flush()
        results += lane.rows
        failed = failed or lane.code
        lanes.remove(lane)
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--out', help='also write the table to this file')
    parser.add_argument('stages', nargs='+', metavar='STAGE',
                        help='Makefile targets, run in this order (&A+B: a background lane; wait: join the lanes)')
    args = parser.parse_args(argv)
    make = os.environ.get('MAKE') or 'make'
    os.makedirs('build', exist_ok=True)
    previous = os.environ.get('PHOENIX_STAGE_RUN_DIR')
    os.environ['PHOENIX_STAGE_RUN_DIR'] = run_dir = os.path.abspath(tempfile.mkdtemp(prefix='stage-run-', dir='build'))
    try:
        return run(make, args)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
        if previous is None:
            del os.environ['PHOENIX_STAGE_RUN_DIR']
        else:
            os.environ['PHOENIX_STAGE_RUN_DIR'] = previous


def run(make, args):
    """The stages of ARGS, timed; the exit status."""
    results, lanes, started_lanes, status = [], [], [], 0
    started, counters = time.monotonic(), cpu_counters()
    stages = list(args.stages) + (['wait'] if args.stages[-1] != 'wait' else [])
    planned = [name for stage in stages if stage.partition('@')[0] != 'wait'
               for name in stage.lstrip('&').partition('@')[0].split('+')]
    for index, stage in enumerate(stages):
        if stage == 'wait' or stage.startswith('wait@'):
            only = holding(started_lanes, stage[5:]) if '@' in stage else list(lanes)
            only = [lane for lane in only if lane in lanes]
            if only:
                print('=== waiting for the background lanes: %s' % ', '.join('+'.join(lane.stages) for lane in only),
                      flush=True)
                status = join(lanes, results, only)
        elif stage.startswith('&'):
            spec, _at, after = stage[1:].partition('@')
            lane = Lane(make, spec.split('+'), holding(started_lanes, after) if after else ())
            started_lanes.append(lane)
            os.makedirs('build', exist_ok=True)
            open(lane.log, 'w').close()
            print('=== lane %s started in the background%s (output: %s)' % (
                '+'.join(lane.stages), ', after %s' % after if after else '', lane.log), flush=True)
            lane.start()
            lanes.append(lane)
        else:
            print('=== stage %s (%d/%d)' % (stage, index + 1, len(stages)), flush=True)
            code, seconds, busy, cpu = run_stage(make, stage)
            results.append((stage, seconds, busy, cpu,
                            'passed' if code == 0 else 'FAILED' if code != 130 else 'interrupted'))
            if code:
                status = 130 if code == 130 else code if 0 < code < 126 else 1
                join(lanes, results)
        if status:
            done = {row[0].lstrip('&') for row in results}
            results += [(rest, None, '', None, 'not run') for rest in planned if rest not in done]
            break
    text = table(results, time.monotonic() - started, busy_share(counters, cpu_counters()))
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
