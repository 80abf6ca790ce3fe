# -*- coding: utf-8 -*-
"""Shared fixtures: make the collection importable from the checkout and give each test its own config copy."""

import json
import os
import shutil
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.path.join(REPO, 'collections')
if COLLECTIONS not in sys.path and not os.path.isdir(os.path.join(REPO, '..', '..', 'ansible_collections')):
    sys.path.insert(0, COLLECTIONS)

FIXTURES = os.path.join(REPO, 'tests', 'fixtures')
REFERENCE = os.path.join(FIXTURES, 'reference')
ETC = os.path.join(REPO, 'etc')
STACKS = os.path.join(REPO, 'stacks')


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


def _copy(src_root, dst):
    shutil.copytree(os.path.join(src_root, 'etc'), os.path.join(dst, 'etc'),
                    ignore=shutil.ignore_patterns('schemas'))
    shutil.copytree(os.path.join(src_root, 'stacks'), os.path.join(dst, 'stacks'))
    return ConfigTree(str(dst))


@pytest.fixture
def phoenix_tree(tmp_path):
    """A copy of the project's own etc/ and stacks/."""
    return _copy(REPO, tmp_path / 'phoenix')


@pytest.fixture
def reference_tree(tmp_path):
    """A copy of the real deployment's configs (tests/fixtures/reference)."""
    return _copy(REFERENCE, tmp_path / 'reference')
