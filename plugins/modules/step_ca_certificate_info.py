#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: step_ca_certificate_info
short_description: Inspect a certificate file on the target (subject, SANs, issuer, expiry)
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Reads a PEM certificate and returns its subject, SANs, issuer, serial, validity and key type, without
    contacting any CA. With O(root), also whether it is signed by that root (directly or through an
    intermediate found after the leaf in O(path) or in O(chain_path)).
requirements:
  - cryptography
options:
  path:
    description: Certificate file (PEM; the first certificate is inspected).
    type: path
    required: true
  root:
    description: Root certificate (PEM) to verify the certificate against.
    type: path
  chain_path:
    description: File with the intermediates (for example the leaf + intermediate chain file).
    type: path
  key_path:
    description: Private key to check against the certificate (RV(key_matches)).
    type: path
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
seealso:
  - module: thinkheads.phoenix.step_ca_certificate
'''

EXAMPLES = r'''
- name: When does the gateway certificate expire?
  thinkheads.phoenix.step_ca_certificate_info:
    path: /etc/nginx/tls/nginx.crt
    root: /usr/local/share/ca-certificates/phoenix-root-ca.crt
    chain_path: /etc/nginx/tls/nginx.fullchain.crt
  register: gateway_cert

- name: Fail when it has less than a day left
  ansible.builtin.assert:
    that: gateway_cert.seconds_left > 86400

- name: Does the Traefik key still belong to its certificate?
  thinkheads.phoenix.step_ca_certificate_info:
    path: /etc/traefik/certs/traefik.crt
    key_path: /etc/traefik/certs/traefik.key
  register: traefik_cert

- name: Is the vLLM certificate (leaf and intermediate in one file) signed by the Phoenix root?
  thinkheads.phoenix.step_ca_certificate_info:
    path: /etc/vllm/tls/vllm.chain.crt
    root: /usr/local/share/ca-certificates/phoenix-root-ca.crt
  register: vllm_cert
  failed_when: vllm_cert.exists and not vllm_cert.chains_to_root
'''

RETURN = r'''
exists:
  description: Whether O(path) exists and holds a certificate.
  returned: always
  type: bool
  sample: true
subject:
  description: Subject DN (RFC 4514).
  returned: when exists
  type: str
  sample: CN=nginx.internal
common_name:
  description: Subject common name.
  returned: when exists
  type: str
  sample: nginx.internal
sans:
  description: Subject alternative names (DNS names, IP addresses, e-mails, URIs).
  returned: when exists
  type: list
  elements: str
  sample: [nginx.internal, gateway.internal, 10.0.0.153]
issuer:
  description: Issuer DN (RFC 4514).
  returned: when exists
  type: str
  sample: CN=ThinkHeads Internal Intermediate CA,O=ThinkHeads
serial:
  description: Serial number, decimal.
  returned: when exists
  type: str
  sample: "231740562284957136942931011238426543209"
not_before:
  description: Start of validity (UTC, ISO 8601).
  returned: when exists
  type: str
  sample: "2026-11-05T03:11:00Z"
not_after:
  description: End of validity (UTC, ISO 8601).
  returned: when exists
  type: str
  sample: "2026-12-05T03:12:00Z"
seconds_left:
  description: Seconds until O(path) expires (negative when expired).
  returned: when exists
  type: int
  sample: 2505600
days_left:
  description: Days until expiry, two decimals.
  returned: when exists
  type: float
  sample: 29.0
expired:
  description: Whether the certificate has expired.
  returned: when exists
  type: bool
  sample: false
key_type:
  description: Key type (V(EC256), V(RSA2048), V(Ed25519), ...).
  returned: when exists
  type: str
  sample: EC256
fingerprint:
  description: SHA-256 of the DER encoding.
  returned: when exists
  type: str
  sample: 3f1c5e0b8a2d47e6c9b1f0a4d8e27c6b5a93f1e0d4c2b7a6f8e9d0c1b2a3f4e5
chains_to_root:
  description: Whether the certificate is signed by O(root) (null without O(root)).
  returned: when exists
  type: bool
  sample: true
key_matches:
  description: Whether O(key_path) is the certificate's private key (null without O(key_path)).
  returned: when exists
  type: bool
  sample: true
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.common import require_libraries, StepCAError
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.x509 import (
    certificate_info, chains_to, key_matches_certificate, load_certificate_file, load_private_key_file,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.renew import read_intermediates
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            root=dict(type='path'),
            chain_path=dict(type='path'),
            key_path=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    check_options(module, 'step_ca_certificate_info')
    params = module.params
    try:
        require_libraries(jose=False)
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc))
    if not os.path.exists(params['path']):
        module.exit_json(changed=False, exists=False)
    try:
        cert = load_certificate_file(params['path'])[0]
    except (StepCAError, ValueError, IOError, OSError) as exc:
        module.fail_json(msg='cannot read certificate %s: %s' % (params['path'], to_native(exc)))
    result = certificate_info(cert)
    result['chains_to_root'] = None
    if params['root']:
        try:
            roots = load_certificate_file(params['root'])
        except (StepCAError, ValueError, IOError, OSError) as exc:
            module.fail_json(msg='cannot read root %s: %s' % (params['root'], to_native(exc)))
        result['chains_to_root'] = chains_to(cert, read_intermediates(params['path'], params['chain_path']), roots)
    result['key_matches'] = None
    if params['key_path']:
        try:
            result['key_matches'] = key_matches_certificate(load_private_key_file(params['key_path']), cert)
        except (ValueError, TypeError, IOError, OSError) as exc:
            module.fail_json(msg='cannot read key %s: %s' % (params['key_path'], to_native(exc)))
    module.exit_json(changed=False, exists=True, **result)


if __name__ == '__main__':
    main()
