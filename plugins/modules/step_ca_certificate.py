#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: step_ca_certificate
short_description: X.509 certificate from Step-CA, issued and renewed only when needed
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Enrols a certificate with Step-CA through its HTTP API, without the C(step) CLI. The JWK provisioner's
    encrypted key is fetched from the CA, decrypted with the provisioner password, and used to sign the
    one-time token for C(POST /1.0/sign). Key and CSR are generated on the target.
  - Exactly idempotent. The module first looks at the files on the target, without contacting the CA, and acts
    only when it must. It issues a new key and certificate when the certificate is missing or unreadable, the
    key is missing or does not match, the common name, SANs or key type changed, the certificate is not signed
    by the current CA (checked against O(root) and the intermediates in O(chain_path)) or it expired.
    It renews over mTLS (C(POST /1.0/renew), same key) when the certificate is valid and only the remaining
    lifetime is below O(renew_before). When nothing is due, it sends no request to the CA at all (see
    RV(ca_requests)).
  - Key, certificate and chain are swapped as one unit. They are written, with O(owner), O(group) and O(mode)
    set, into a new version directory next to the certificate (C(.<cert file name>.versions/v<N>/)), then one
    symlink (C(live)) is switched to it by a rename. O(cert_path), O(key_path) and O(chain_path) are relative
    symlinks through C(live), so a reader never finds a key that does not match the certificate next to it,
    even if the run is killed halfway. Plain files found there (an older layout) are adopted unchanged as a
    version of their own first. The live version and the one before it are kept, older ones are removed.
  - Writes happen under the lock of the renewal timer of the C(thinkheads.phoenix.step_certificates) role (O(lock_file),
    C(flock)); after taking it the module looks at the files again, so that it never renews what the timer has
    just renewed. A run with nothing to do takes no lock.
  - O(state=revoked) revokes the certificate at O(cert_path) (passive revocation), authenticated by the
    certificate itself over mTLS while it is valid, else by a one-time token of the provisioner.
requirements:
  - cryptography
  - jwcrypto
options:
  root:
    description:
      - Path of the CA's root certificate (PEM) on the target, as written by M(thinkheads.phoenix.step_ca_bootstrap).
      - The CA's TLS certificate is verified against it, and so is the issuer of the current certificate.
    type: path
    required: true
  provisioner:
    description: Name of the JWK provisioner that authorises the certificate. Required with O(state=present).
    type: str
  provisioner_password:
    description: Password of the provisioner's encrypted key. Never logged.
    type: str
  provisioner_password_file:
    description: File on the target holding the provisioner password (trailing newline ignored).
    type: path
  common_name:
    description: Subject common name. Required with O(state=present).
    type: str
  sans:
    description:
      - Subject alternative names (DNS names, IP addresses, e-mail addresses, URIs).
      - The common name is added as the first SAN unless O(include_cn_in_sans=false).
    type: list
    elements: str
    default: []
  include_cn_in_sans:
    description: Add O(common_name) to the SANs.
    type: bool
    default: true
  key_type:
    description: Type of the private key. A change re-issues the certificate with a new key.
    type: str
    choices: [EC256, EC384, EC521, RSA2048, RSA3072, RSA4096, Ed25519]
    default: EC256
  lifetime:
    description:
      - Requested validity, a duration such as V(24h) or V(90m), within the provisioner's
        C(minTLSCertDuration)/C(maxTLSCertDuration). Default is the provisioner's C(defaultTLSCertDuration).
      - Only used when a certificate is issued; a change does not by itself re-issue.
    type: str
  renew_before:
    description:
      - Renew when the remaining lifetime is below this threshold, either a duration (V(8h), V(30m)) or a
        percentage of the certificate's total lifetime (V(33%)).
      - Default is one third of the total lifetime.
    type: str
  cert_path:
    description: Where the certificate (leaf only, PEM) is written.
    type: path
    required: true
  key_path:
    description: Where the private key (PKCS#8 PEM, unencrypted) is written.
    type: path
    required: true
  chain_path:
    description:
      - Where the certificate followed by the intermediate CA certificate is written (what Nginx and Traefik
        serve). Also used to check the issuer without asking the CA.
    type: path
  owner:
    description: Owner of the files.
    type: str
  group:
    description: Group of the files.
    type: str
  mode:
    description: Mode of the certificate and chain files.
    type: raw
    default: '0644'
  key_mode:
    description: Mode of the key file.
    type: raw
    default: '0600'
  state:
    description: V(present) issues or renews as needed; V(revoked) revokes the certificate at O(cert_path).
    type: str
    choices: [present, revoked]
    default: present
  force:
    description: Re-issue (new key, C(/1.0/sign)) even when nothing is due.
    type: bool
    default: false
  revoke_reason:
    description: Revocation reason with O(state=revoked).
    type: str
    choices: [unspecified, key_compromise, ca_compromise, affiliation_changed, superseded, cessation_of_operation,
              certificate_hold, privilege_withdrawn, aa_compromise]
    default: unspecified
  lock_file:
    description:
      - Lock file shared with the renewal timer (C(phoenix-cert-renew --lock)); taken before writing.
      - Empty, or a path whose directory does not exist, writes without a lock.
    type: path
    default: /run/phoenix-cert-renew.lock
  lock_timeout:
    description: Seconds to wait for O(lock_file) before failing.
    type: int
    default: 300
  retries:
    description:
      - Retries (with exponential backoff) of requests that certainly did not reach the CA (connection refused,
        connect timeout, TLS handshake cut), and of reads (GET) on a lost answer or HTTP 502/503/504.
      - A write (C(/1.0/sign), C(/1.0/renew), C(/1.0/revoke)) that went out without a usable answer is never
        retried (the CA may have issued the certificate or used the one-time token); the task fails and says so.
      - TLS verification failures are never retried.
    type: int
    default: 3
notes:
  - The CA URL must be reachable from the target; TLS is always verified against O(root).
extends_documentation_fragment:
  - thinkheads.phoenix.step_ca
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
seealso:
  - module: thinkheads.phoenix.step_ca_bootstrap
  - module: thinkheads.phoenix.step_ca_certificate_info
'''

EXAMPLES = r'''
- name: Certificate of the Nginx gateway
  thinkheads.phoenix.step_ca_certificate:
    ca_url: https://ca.internal:9000
    root: /usr/local/share/ca-certificates/phoenix-root-ca.crt
    provisioner: services
    provisioner_password: "{{ vault_step_ca_services_password }}"
    common_name: nginx.internal
    sans: [gateway.internal, 10.0.0.153]
    lifetime: 720h
    renew_before: 33%
    cert_path: /etc/nginx/tls/nginx.crt
    chain_path: /etc/nginx/tls/nginx.fullchain.crt
    key_path: /etc/nginx/tls/nginx.key
    group: www-data
    key_mode: '0640'
  notify: Reload nginx

- name: Revoke a retired service's certificate
  thinkheads.phoenix.step_ca_certificate:
    ca_url: https://ca.internal:9000
    root: /usr/local/share/ca-certificates/phoenix-root-ca.crt
    cert_path: /etc/old/tls.crt
    key_path: /etc/old/tls.key
    state: revoked
    revoke_reason: cessation_of_operation

- name: Traefik's certificate, renewed 8 hours before expiry, the password read from a file on the guest
  thinkheads.phoenix.step_ca_certificate:
    ca_url: https://ca.internal.thinkheads.ai:9000
    root: /usr/local/share/ca-certificates/phoenix-root-ca.crt
    provisioner: services
    provisioner_password_file: /etc/step/services.pass
    common_name: traefik.internal.thinkheads.ai
    sans: [traefik.internal.thinkheads.ai, 10.0.0.12]
    include_cn_in_sans: false
    key_type: EC384
    lifetime: 24h
    renew_before: 8h
    cert_path: /etc/traefik/certs/traefik.crt
    chain_path: /etc/traefik/certs/traefik.chain.crt
    key_path: /etc/traefik/certs/traefik.key
    owner: traefik
    group: traefik
    mode: '0644'
    key_mode: '0600'
    timeout: 30
    retries: 5
  register: traefik_cert

- name: Re-issue the vLLM certificate with a new key after a suspected key leak, waiting for the renewal timer
  thinkheads.phoenix.step_ca_certificate:
    ca_url: https://10.0.0.10:9000
    root: /usr/local/share/ca-certificates/phoenix-root-ca.crt
    provisioner: services
    provisioner_password: "{{ vault_step_ca_services_password }}"
    common_name: vllm.internal.thinkheads.ai
    cert_path: /etc/vllm/tls/vllm.crt
    chain_path: /etc/vllm/tls/vllm.chain.crt
    key_path: /etc/vllm/tls/vllm.key
    force: true
    lock_file: /run/phoenix-cert-renew.lock
    lock_timeout: 600
'''

RETURN = r'''
action:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  choices: [none, issued, renewed, reissued, revoked]
  sample: renewed
reason:
  description: Why (for example V(SANs ['a'], wanted ['a', 'b']) or the remaining lifetime against the threshold).
  returned: always
  type: str
  sample: remaining lifetime 7h12m is below 8h
common_name:
  description: Common name of the certificate now at O(cert_path).
  returned: when a certificate exists
  type: str
  sample: nginx.internal
serial:
  description: Serial number (decimal) of the certificate now at O(cert_path).
  returned: when a certificate exists
  type: str
  sample: "231740562284957136942931011238426543209"
not_after:
  description: Expiry (UTC, ISO 8601) of the certificate now at O(cert_path).
  returned: when a certificate exists
  type: str
  sample: "2026-12-06T03:12:00Z"
sans:
  description: SANs of the certificate now at O(cert_path).
  returned: when a certificate exists
  type: list
  elements: str
  sample: [nginx.internal, gateway.internal, 10.0.0.153]
issuer:
  description: Issuer DN of the certificate now at O(cert_path).
  returned: when a certificate exists
  type: str
  sample: CN=ThinkHeads Internal Intermediate CA,O=ThinkHeads
key_type:
  description: Key type of the certificate now at O(cert_path).
  returned: when a certificate exists
  type: str
  sample: EC256
ca_requests:
  description:
    - "Requests sent to the CA in this run, by endpoint, for example V({\"/provisioners\": 1, \"/1.0/sign\": 1}).
      Empty when nothing was due: the proof of idempotence."
  returned: always
  type: dict
  sample: {/1.0/renew: 1}
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.common import (
    KEY_TYPES, parse_threshold, require_libraries, REVOCATION_REASONS, StepCAError,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.x509 import load_certificate_file
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.client import StepCAClient
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.files import DEFAULT_LOCK_FILE
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.provisioners import go_duration
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca_certificate_manager import CertificateManager
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ca_url=dict(type='str', required=True),
            root=dict(type='path', required=True),
            provisioner=dict(type='str'),
            provisioner_password=dict(type='str', no_log=True),
            provisioner_password_file=dict(type='path', no_log=False),
            common_name=dict(type='str'),
            sans=dict(type='list', elements='str', default=[]),
            include_cn_in_sans=dict(type='bool', default=True),
            key_type=dict(type='str', choices=list(KEY_TYPES), default='EC256'),
            lifetime=dict(type='str'),
            renew_before=dict(type='str'),
            cert_path=dict(type='path', required=True),
            key_path=dict(type='path', required=True),
            chain_path=dict(type='path'),
            owner=dict(type='str'),
            group=dict(type='str'),
            mode=dict(type='raw', default='0644'),
            key_mode=dict(type='raw', default='0600', no_log=False),
            state=dict(type='str', choices=['present', 'revoked'], default='present'),
            force=dict(type='bool', default=False),
            revoke_reason=dict(type='str', choices=sorted(REVOCATION_REASONS), default='unspecified'),
            timeout=dict(type='int', default=15),
            retries=dict(type='int', default=3),
            lock_file=dict(type='path', default=DEFAULT_LOCK_FILE),
            lock_timeout=dict(type='int', default=300),
        ),
        mutually_exclusive=[('provisioner_password', 'provisioner_password_file')],
        required_if=[('state', 'present', ('provisioner', 'common_name'))],
        supports_check_mode=True,
    )
    check_options(module, 'step_ca_certificate')
    params = module.params
    try:
        require_libraries()
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc))

    # Validate everything before touching anything.
    if params['state'] == 'present' and params['provisioner_password'] is None \
            and not params['provisioner_password_file']:
        module.fail_json(msg='state=present needs provisioner_password or provisioner_password_file')
    try:
        threshold = parse_threshold(params['renew_before'])
        lifetime = go_duration(params['lifetime']) if params['lifetime'] else None
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc))
    if not os.path.isfile(params['root']):
        module.fail_json(msg='root %s does not exist: fetch it first with thinkheads.phoenix.step_ca_bootstrap'
                         % params['root'])
    try:
        roots = load_certificate_file(params['root'])
    except (StepCAError, ValueError) as exc:
        module.fail_json(msg='root %s is not a PEM certificate: %s' % (params['root'], to_native(exc)))
    for path in (params['cert_path'], params['key_path'], params['chain_path']):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            module.fail_json(msg='directory %s does not exist (for %s)' % (os.path.dirname(path), path))
    try:
        client = StepCAClient(params['ca_url'], root_path=params['root'],
                              timeout=params['timeout'], retries=params['retries'])
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc))

    try:
        manager = CertificateManager(module, client)
        if params['state'] == 'revoked':
            manager.revoke()
        else:
            manager.present(roots, threshold, lifetime)
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc), ca_requests=client.requests)


if __name__ == '__main__':
    main()
