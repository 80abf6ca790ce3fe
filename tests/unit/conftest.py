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
