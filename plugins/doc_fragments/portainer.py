# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options of the modules that talk to the Portainer API (portainer_argument_spec in
    # module_utils/portainer.py is their argument spec).
    DOCUMENTATION = r'''
options:
  url:
    description: Portainer's URL, for example V(https://portainer.example:9443). Env C(PHOENIX_PORTAINER_URL).
    type: str
  api_key:
    description: Portainer API access token (C(X-API-Key)). Env C(PHOENIX_PORTAINER_API_KEY).
    type: str
  username:
    description: User for JWT authentication when no O(api_key) is given. Env C(PHOENIX_PORTAINER_USERNAME).
    type: str
  password:
    description: Password for O(username). Env C(PHOENIX_PORTAINER_PASSWORD).
    type: str
  validate_certs:
    description: Verify Portainer's TLS certificate. Env C(PHOENIX_PORTAINER_VALIDATE_CERTS).
    type: bool
    default: true
  ca_path:
    description: CA bundle to verify Portainer's certificate with. Env C(PHOENIX_PORTAINER_CA_PATH).
    type: path
  api_timeout:
    description: Seconds per API request.
    type: int
    default: 30
  api_retries:
    description:
      - Retries (with exponential backoff) of a reading request on connection errors, timeouts and HTTP 502/503/504.
      - A write (create, update, delete) is retried only when it certainly did not reach Portainer (connection
        refused, connect timeout) or got HTTP 503. After a read timeout, a connection closed before the answer, or
        HTTP 502/504 it may have been carried out; it is not sent again and the module reads what Portainer holds.
      - A TLS verification failure is never retried.
    type: int
    default: 3
'''
