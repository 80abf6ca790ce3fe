# -*- coding: utf-8 -*-
"""Test helpers shared by the unit and integration suites (kept out of conftest.py so they import by name)."""

import json
import os
import shutil
import sys

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


def copy_tree(src_root, dst):
    shutil.copytree(os.path.join(src_root, 'etc'), os.path.join(dst, 'etc'),
                    ignore=shutil.ignore_patterns('schemas'))
    shutil.copytree(os.path.join(src_root, 'stacks'), os.path.join(dst, 'stacks'))
    return ConfigTree(str(dst))
