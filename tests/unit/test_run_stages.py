# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/run_stages.py: stage order, background lanes, the table and the stop at the first failure."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / 'scripts' / 'run_stages.py'

MAKEFILE = """\
ok:
\t@echo ok-ran >> order.txt
slow:
\t@sleep 1; echo slow-ran >> order.txt
waits:
\t@sleep 1; for i in $$(seq 1 300); do grep -qs ok-ran order.txt && break; sleep 0.1; done; echo slow-ran >> order.txt
after:
\t@echo after-ran >> order.txt
bad:
\t@echo bad-ran >> order.txt; exit 3
burn:
\t@python3 -c 'import time; _ = [0 for _ in iter(lambda: time.process_time() < 1.0, False)]'
"""


def run(tmp_path, *stages):
    (tmp_path / 'Makefile').write_text(MAKEFILE)
    proc = subprocess.run([sys.executable, str(SCRIPT), '--out', 'build/times.txt', *stages], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, MAKEFLAGS=''), check=False)
    table = (tmp_path / 'build' / 'times.txt').read_text()
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:] if line and not line.startswith('-')}
    order = (tmp_path / 'order.txt').read_text().split() if (tmp_path / 'order.txt').exists() else []
    return proc, rows, order


def test_lane_runs_in_the_background_in_order_and_is_joined(tmp_path):
    # `waits` ends only once the foreground stage has run (or after 30 s): no race with the foreground's start-up
    proc, rows, order = run(tmp_path, '&waits+after', 'ok', 'wait', 'ok')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the foreground stage does not wait for the lane; the lane's two stages keep their order
    assert order.index('ok-ran') < order.index('slow-ran') < order.index('after-ran'), order
    assert rows['&waits'][-1] == 'passed' and float(rows['&waits'][1]) >= 1.0
    assert rows['&after'][-1] == 'passed'
    assert rows['total'][-1] == 'passed'
    assert 'busy' in (tmp_path / 'build' / 'times.txt').read_text().splitlines()[0]


def test_cpu_column_is_the_stages_own_cpu_time_and_the_total_sums_it(tmp_path):
    # `burn` spends one CPU-second in a grandchild of make (python under the recipe's shell); `slow` only sleeps
    proc, rows, _order = run(tmp_path, 'burn', '&slow', 'wait')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    header = (tmp_path / 'build' / 'times.txt').read_text().splitlines()[0].split()
    assert header == ['stage', 'seconds', 'busy', 'cpu', 'result']
    burn, slow = float(rows['burn'][3]), float(rows['&slow'][3])
    assert burn >= 1.0 and slow < 0.5, rows
    assert float(rows['total'][3]) >= burn


def test_first_failure_stops_the_run_and_marks_the_rest_not_run(tmp_path):
    proc, rows, order = run(tmp_path, '&slow+after', 'bad', 'ok', '&after')
    assert proc.returncode == 2   # make exits 2 when a recipe fails
    assert rows['bad'][-1] == 'FAILED'
    assert rows['ok'][-2:] == ['not', 'run']
    # the lane already started is joined, so its rows are complete
    assert rows['&slow'][-1] == 'passed' and rows['&after'][-1] == 'passed'
    assert rows['total'][-2:] == ['FAILED', '(bad)']
    assert 'ok-ran' not in order


def test_a_failing_lane_stage_skips_the_rest_of_its_lane_and_fails_the_run(tmp_path):
    proc, rows, order = run(tmp_path, '&bad+after', 'ok', 'wait', 'slow')
    assert proc.returncode == 2   # make exits 2 when a recipe fails
    assert rows['&bad'][-1] == 'FAILED'
    assert rows['&after'][-2:] == ['not', 'run']
    assert rows['slow'][-2:] == ['not', 'run']
    assert order == ['ok-ran', 'bad-ran'] or order == ['bad-ran', 'ok-ran']


def test_a_lane_after_another_starts_when_that_one_ends_and_wait_at_joins_only_the_named_lanes(tmp_path):
    # &slow: one second; &after@slow waits for it; `wait@slow` joins &slow only, `ok` runs while &after may still run
    proc, rows, order = run(tmp_path, '&slow', '&after@slow', 'wait@slow', 'ok', 'wait')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert order.index('slow-ran') < order.index('after-ran'), order
    assert order.index('slow-ran') < order.index('ok-ran'), order
    assert rows['&slow'][-1] == 'passed' and rows['&after'][-1] == 'passed' and rows['ok'][-1] == 'passed'
    assert 'after slow' in proc.stdout


def test_a_lane_after_a_failed_lane_runs_nothing(tmp_path):
    proc, rows, order = run(tmp_path, '&bad', '&after@bad', 'ok', 'wait')
    assert proc.returncode == 2
    assert rows['&bad'][-1] == 'FAILED'
    assert rows['&after'][-2:] == ['not', 'run']
    assert 'after-ran' not in order and 'ok-ran' in order


def test_a_lane_after_an_unknown_stage_is_refused(tmp_path):
    (tmp_path / 'Makefile').write_text(MAKEFILE)
    proc = subprocess.run([sys.executable, str(SCRIPT), '&after@nosuch', 'ok'], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, MAKEFLAGS=''), check=False)
    assert proc.returncode != 0 and 'no lane started before holds nosuch' in proc.stderr
    assert not (tmp_path / 'order.txt').exists()


def test_stages_share_a_run_folder_that_is_gone_at_the_end(tmp_path):
    # `claim` in a lane and in the foreground: exactly one of them makes the folder of the run (as molecule's lanes
    # claim scenarios)
    makefile = MAKEFILE + 'claim:\n\t@if mkdir "$$PHOENIX_STAGE_RUN_DIR/x"; then echo won >> order.txt; ' \
                          'else echo lost >> order.txt; fi\n'
    (tmp_path / 'Makefile').write_text(makefile)
    proc = subprocess.run([sys.executable, str(SCRIPT), '&claim', 'claim', 'wait'], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, MAKEFLAGS=''), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted((tmp_path / 'order.txt').read_text().split()) == ['lost', 'won']
    assert not list((tmp_path / 'build').glob('stage-run-*'))


def test_two_molecule_runs_of_one_run_share_the_scenarios(tmp_path):
    """The Makefile's molecule target, twice at once with one PHOENIX_STAGE_RUN_DIR (a stand-in `molecule`):
    every scenario runs once, in one of them; after a failure neither claims another."""
    repo = SCRIPT.parents[1]
    fake = tmp_path / 'bin'
    fake.mkdir()
    (fake / 'molecule').write_text('#!/bin/sh\necho "$3" >> "%s/ran.txt"; sleep 0.3\n'
                                   '[ "$3" != "${FAIL_SCENARIO:-}" ]\n' % tmp_path)
    (fake / 'molecule').chmod(0o755)

    def both(run_dir, fail=''):
        env = dict(os.environ, MAKEFLAGS='', PHOENIX_STAGE_RUN_DIR=str(run_dir), FAIL_SCENARIO=fail)
        cmd = ['make', '--no-print-directory', '-C', str(repo), '-o', 'venv', 'molecule', 'MOLECULE_SETUP=true',
               'MOLECULE=%s' % (fake / 'molecule'),
               'MOLECULE_NEEDS_TOOLS=', 'MOLECULE_SCENARIOS=a b c d e f']
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for _lane in range(2)]
        return [(proc.wait(timeout=60), proc.stdout.read()) for proc in procs]

    results = both(tmp_path / 'run1')
    assert all(code == 0 for code, _out in results), results
    assert sorted((tmp_path / 'ran.txt').read_text().split()) == list('abcdef')
    assert all('claimed by the other lane' in out for _code, out in results), results

    (tmp_path / 'ran.txt').unlink()
    results = both(tmp_path / 'run2', fail='b')
    assert sorted(code != 0 for code, _out in results) == [True, True], results
    ran = (tmp_path / 'ran.txt').read_text().split()
    assert len(ran) == len(set(ran)) and 'b' in ran and len(ran) < 6, ran
