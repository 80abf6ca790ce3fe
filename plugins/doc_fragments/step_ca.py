# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # How the modules that talk to the Step-CA reach it. A module may describe an option further (its own entry
    # replaces the keys it gives).
    DOCUMENTATION = r'''
options:
  ca_url:
    description: URL of the CA, for example V(https://ca.internal:9000).
    type: str
    required: true
  timeout:
    description: Timeout in seconds of each request to the CA.
    type: int
    default: 15
  retries:
    description: Retries (with exponential backoff) on connection failures and HTTP 502/503/504.
    type: int
    default: 3
'''
