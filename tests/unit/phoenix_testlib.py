# -*- coding: utf-8 -*-
"""Test helpers shared by the unit and integration suites (kept out of conftest.py so they import by name)."""

import json
import os
import shutil
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.path.join(REPO, 'collections')
if COLLECTIONS not in sys.path and not os.path.isdir(os.path.join(REPO, '..', '..', 'ansible_collections')):
    sys.path.insert(0, COLLECTIONS)

FIXTURES = os.path.join(REPO, 'tests', 'fixtures')
REFERENCE = os.path.join(FIXTURES, 'reference')
ETC = os.path.join(REPO, 'etc')
STACKS = os.path.join(REPO, 'stacks')


def wait_for(probe, ok, what, timeout=45, interval=0.5):
    """Call ``probe()`` until ``ok(value)`` holds and return that value (for checks that follow a reload, restart,
    deploy or convergence: the state they read arrives after the call that caused it has returned).

    An exception raised by ``probe`` counts as a value that is not ok yet. After ``timeout`` seconds this raises
    AssertionError naming ``what`` and the last value (or exception) seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value, error = probe(), None
        except Exception as exc:  # pylint: disable=broad-except
            value, error = None, exc
        if error is None and ok(value):
            return value
        if time.monotonic() >= deadline:
            last = 'exception %r' % (error,) if error is not None else repr(value)
            raise AssertionError('%s: not within %g s; last value seen: %s' % (what, timeout, last[:4000]))
        time.sleep(interval)


def wait_equal(probe, expected, what, timeout=45, interval=0.5):
    """``wait_for`` until ``probe()`` returns ``expected``."""
    return wait_for(probe, lambda value: value == expected, '%s (expected %r)' % (what, expected), timeout=timeout,
                    interval=interval)


class ConfigTree:
    """A writable copy of a config tree (etc/ + stacks/) with JSON helpers."""

    def __init__(self, root):
        self.root = root
        self.etc = os.path.join(root, 'etc')
        self.stacks = os.path.join(root, 'stacks')

    def path(self, name):
        if name.startswith('stacks/'):
            return os.path.join(self.root, name)
        return os.path.join(self.etc, name)

    def read(self, name):
        with open(self.path(name)) as handle:
            return json.load(handle)

    def write(self, name, data):
        with open(self.path(name), 'w') as handle:
            if isinstance(data, str):
                handle.write(data)
            else:
                json.dump(data, handle, indent=2)

    def load(self, **kwargs):
        from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.model import load_config
        return load_config(self.etc, self.stacks, **kwargs)


def copy_tree(src_root, dst):
    shutil.copytree(os.path.join(src_root, 'etc'), os.path.join(dst, 'etc'),
                    ignore=shutil.ignore_patterns('schemas'))
    shutil.copytree(os.path.join(src_root, 'stacks'), os.path.join(dst, 'stacks'))
    return ConfigTree(str(dst))
