# -*- coding: utf-8 -*-
"""What the docs tell a user to type, once: the Proxmox privileges recipe is the same wherever it is given."""

import os

from phoenix_testlib import REPO

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import pveum_recipe


def test_one_pveum_recipe():
    # README, docs/proxmox.md and the single-node example give the same privileges recipe, line for line.
    def recipe(path):
        with open(os.path.join(REPO, path)) as handle:
            lines = [line.strip() for line in handle if line.strip().startswith('pveum ')]
        assert lines, path
        return lines
    readme = recipe('README.md')
    assert recipe('docs/proxmox.md') == readme
    assert recipe('examples/single-node/README.md') == readme
    assert 'VM.Snapshot' in readme[0] and 'Datastore.AllocateTemplate' in readme[0] and 'VM.Config.CDROM' in readme[0]
    # the role line is the collection's one privilege list (what proxmox_privileges checks a token against)
    assert readme[0] == pveum_recipe()
