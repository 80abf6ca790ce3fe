# -*- coding: utf-8 -*-
"""Fixtures: one real step-ca per session (see stepca_testlib.py) and a counting proxy per test."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stepca_testlib import ADMIN, ADMIN_CLAIMS, ADMIN_PASSWORD, CountingProxy, StepCA, require_tools, run_module  # noqa: E402


@pytest.fixture(scope='session')
def stepca(tmp_path_factory):
    require_tools()
    ca = StepCA(str(tmp_path_factory.mktemp('phx-stepca')))
    ca.init()
    # The JWK provisioner that step ca init created keeps its key (the password decrypts it); only the claims
    # change: short certificates for the renewal tests.
    result = run_module('step_ca_provisioner', dict(config=ca.config, name=ADMIN, password=ADMIN_PASSWORD,
                                                    claims=ADMIN_CLAIMS))
    assert result.get('failed') is not True, result
    assert result['changed'] is True and result['key_note'] == 'kept the existing key', result
    ca.start()
    yield ca
    ca.stop()


@pytest.fixture
def proxy(stepca):
    counting = CountingProxy(stepca.port)
    yield counting
    counting.close()
