# -*- coding: utf-8 -*-
"""Unit-test fixtures: each test gets its own writable copy of a config tree."""

import pytest

from phoenix_testlib import REFERENCE, REPO, copy_tree


@pytest.fixture
def phoenix_tree(tmp_path):
    """A copy of the project's own etc/ and stacks/."""
    return copy_tree(REPO, tmp_path / 'phoenix')


@pytest.fixture
def reference_tree(tmp_path):
    """A copy of the real deployment's configs (tests/fixtures/reference)."""
    return copy_tree(REFERENCE, tmp_path / 'reference')


# modules whose tests run in order on one module-scoped double (each test builds on the one before): pytest-xdist
# must give all of a module's tests to one worker; every other test is spread one by one as with --dist load
IN_ORDER = ('tests/unit/test_portainer_stack.py',)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class InOrderModules(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split('::', 1)[0]
            return path if path.endswith(IN_ORDER) else nodeid

    if config.getvalue('dist') == 'load':
        return InOrderModules(config, log)
    return None
