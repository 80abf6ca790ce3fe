# -*- coding: utf-8 -*-
"""No early-exit reader at the end of a pipeline in a script that runs with pipefail.

`producer | grep -q PATTERN` under `set -o pipefail` fails at random: grep exits at its first match, and when the
producer writes again after that (bash's echo writes line by line) it dies of SIGPIPE, so the pipeline's status is
141 although the pattern was found. A CI run failed this way in release_check.sh ("ansible-doc -l lacks
proxmox_image" with proxmox_image in the listing). Scripts use a here-string (`grep -q PATTERN <<<"$text"`) or a
reader that consumes all of its input instead."""

import os
import re
import subprocess

import pytest

from phoenix_testlib import REPO

# A pipe into grep -q / --quiet / -m N / --max-count, or into head.
EARLY_READER = re.compile(r'\|\s*(grep\s+(-\w*[qm]\w*\b|--quiet|--max-count)|head\b)')
PIPEFAIL = re.compile(r'pipefail')


def shell_scripts():
    files = subprocess.run(['git', 'ls-files'], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        path = os.path.join(REPO, name)
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        if name.endswith(('.sh', '.j2')) or os.path.basename(name) in ('Makefile', 'run') or name.endswith('.mk'):
            pass
        else:
            with open(path, 'rb') as handle:
                first = handle.readline()
            if not re.match(rb'#!.*\b(ba)?sh\b', first):
                continue
        with open(path, encoding='utf-8', errors='replace') as handle:
            text = handle.read()
        if name.endswith('.j2') and not text.startswith('#!'):
            continue
        yield name, text


def offending_lines(text):
    """The lines of a pipefail script whose pipeline ends in an early-exit reader (outside `sh -c` strings, which
    run without pipefail)."""
    if not PIPEFAIL.search(text):
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split(' #', 1)[0]
        if code.lstrip().startswith('#') or re.search(r'\bsh -c\b', code):
            continue
        if EARLY_READER.search(code):
            found.append('%d: %s' % (number, line.strip()))
    return found


@pytest.mark.parametrize('snippet, bad', [
    ('set -euo pipefail\necho "$x" | grep -q foo || exit 1\n', True),
    ('set -euo pipefail\ncmd --graph | grep -q -- --801\n', True),
    ('set -euo pipefail\nls | head -n 1\n', True),
    ('set -euo pipefail\ngrep -q foo <<<"$x" || exit 1\n', False),
    ('set -eu\necho "$x" | grep -q foo\n', False),
    ('set -euo pipefail\ncheck x sh -c "a | grep -q b"\n', False),
])
def test_the_check_finds_the_pattern(snippet, bad):
    assert bool(offending_lines(snippet)) is bad


def test_no_pipefail_script_pipes_into_an_early_exit_reader():
    scripts = dict(shell_scripts())
    assert 'scripts/release_check.sh' in scripts and 'Makefile' in scripts, sorted(scripts)
    found = {name: lines for name, text in scripts.items() for lines in [offending_lines(text)] if lines}
    assert not found, found
