#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: step_ca_bootstrap
short_description: Fetch Step-CA's root certificate by its pinned fingerprint and trust it
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Downloads the root certificate from C(GET /root/<sha256>) of a Step-CA, checks the SHA-256 of its DER
    encoding against O(fingerprint) itself, and writes it to O(dest) atomically. A wrong fingerprint fails
    and writes nothing.
  - When O(dest) already holds the root with that fingerprint, the CA is not contacted.
  - With O(install_in_trust_store=true) (Debian/Ubuntu) C(update-ca-certificates) runs when the file changed,
    so that OpenSSL, curl and Python's C(ssl) trust the CA.
requirements:
  - cryptography
options:
  fingerprint:
    description:
      - SHA-256 fingerprint of the root certificate (hex; colons and case are ignored), as printed by
        C(step certificate fingerprint root_ca.crt) or C(step ca init).
    type: str
    required: true
  dest:
    description:
      - Where the root certificate (PEM) is written. For the Debian trust store it must end in C(.crt) under
        C(/usr/local/share/ca-certificates).
    type: path
    default: /usr/local/share/ca-certificates/phoenix-root-ca.crt
  install_in_trust_store:
    description: Run C(update-ca-certificates) when O(dest) changed (Debian/Ubuntu; elsewhere a warning).
    type: bool
    default: true
  owner:
    description: Owner of O(dest).
    type: str
  group:
    description: Group of O(dest).
    type: str
  mode:
    description: Mode of O(dest).
    type: raw
    default: '0644'
notes:
  - The request for the root is made without TLS verification (there is nothing to verify against yet);
    the pinned fingerprint is what makes the downloaded root trustworthy.
extends_documentation_fragment:
  - thinkheads.phoenix.step_ca
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
seealso:
  - module: thinkheads.phoenix.step_ca_certificate
'''

EXAMPLES = r'''
- name: Trust the Phoenix root CA
  thinkheads.phoenix.step_ca_bootstrap:
    ca_url: https://ca.internal:9000
    fingerprint: "{{ step_ca_root_fingerprint }}"

- name: Root only for the certificate modules, outside the OS trust store
  thinkheads.phoenix.step_ca_bootstrap:
    ca_url: https://ca.internal:9000
    fingerprint: 71c31a5e537e9781b735e6fd0334ffd971fc8f1972112608927f054cd4b5cada
    dest: /etc/phoenix/root_ca.crt
    install_in_trust_store: false

- name: Root for a service that reads it as its own user, fetched over a slow link
  thinkheads.phoenix.step_ca_bootstrap:
    ca_url: https://ca.internal.thinkheads.ai:9000
    fingerprint: "{{ step_ca_root_fingerprint }}"
    dest: /etc/traefik/certs/phoenix-root-ca.crt
    install_in_trust_store: false
    owner: root
    group: traefik
    mode: '0640'
    timeout: 30
    retries: 5
  register: phoenix_root

- name: Trust the root on the controller too
  thinkheads.phoenix.step_ca_bootstrap:
    ca_url: https://10.0.0.10:9000
    fingerprint: "{{ step_ca_root_fingerprint }}"
  delegate_to: localhost
  become: true
'''

RETURN = r'''
fingerprint:
  description: SHA-256 fingerprint (lower-case hex) of the root at O(dest).
  returned: success
  type: str
  sample: 71c31a5e537e9781b735e6fd0334ffd971fc8f1972112608927f054cd4b5cada
dest:
  description: Path of the root certificate.
  returned: success
  type: str
  sample: /usr/local/share/ca-certificates/phoenix-root-ca.crt
subject:
  description: Subject DN of the root.
  returned: success
  type: str
  sample: CN=ThinkHeads Internal Root CA,O=ThinkHeads
not_after:
  description: Expiry of the root (UTC, ISO 8601).
  returned: success
  type: str
  sample: "2036-03-01T09:12:44Z"
trust_store_updated:
  description: Whether C(update-ca-certificates) ran.
  returned: success
  type: bool
  sample: true
ca_requests:
  description: Requests sent to the CA in this run, by endpoint (empty when O(dest) was already right).
  returned: always
  type: dict
  sample: {/root: 1}
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.common import normalize_fingerprint, require_libraries, StepCAError
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.x509 import cert_fingerprint, certificate_info, load_certificate_file
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.client import StepCAClient
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.files import atomic_write
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ca_url=dict(type='str', required=True),
            fingerprint=dict(type='str', required=True),
            dest=dict(type='path', default='/usr/local/share/ca-certificates/phoenix-root-ca.crt'),
            install_in_trust_store=dict(type='bool', default=True),
            owner=dict(type='str'),
            group=dict(type='str'),
            mode=dict(type='raw', default='0644'),
            timeout=dict(type='int', default=15),
            retries=dict(type='int', default=3),
        ),
        supports_check_mode=True,
    )
    check_options(module, 'step_ca_bootstrap')
    params = module.params
    dest = params['dest']
    try:
        require_libraries(jose=False)
        wanted = normalize_fingerprint(params['fingerprint'])
        client = StepCAClient(params['ca_url'], timeout=params['timeout'], retries=params['retries'])
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc))
    if not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
        module.fail_json(msg='directory %s does not exist (for dest %s)' % (os.path.dirname(dest), dest))

    current = None
    if os.path.exists(dest):
        try:
            current = load_certificate_file(dest)[0]
        except (StepCAError, ValueError, IOError, OSError):
            current = None
    before = {'fingerprint': cert_fingerprint(current), 'subject': current.subject.rfc4514_string()} if current else {}

    if current is not None and cert_fingerprint(current) == wanted:
        root, changed = current, False
    else:
        try:
            root, pem = client.fetch_root(wanted)
        except StepCAError as exc:
            module.fail_json(msg=to_native(exc), ca_requests=client.requests)
        changed = True
        if not module.check_mode:
            mode = params['mode']
            octal = int(mode, 8) if isinstance(mode, str) and mode.isdigit() else (mode if isinstance(mode, int) else None)
            atomic_write(dest, pem, octal if octal is not None else 0o644, params['owner'], params['group'])

    if os.path.exists(dest):
        args = module.load_file_common_arguments(dict(path=dest, owner=params['owner'], group=params['group'],
                                                      mode=params['mode']))
        changed = module.set_fs_attributes_if_different(args, changed)

    trust_updated = False
    if changed and params['install_in_trust_store'] and before.get('fingerprint') != wanted:
        tool = module.get_bin_path('update-ca-certificates')
        if tool is None:
            module.warn('update-ca-certificates not found (not Debian/Ubuntu?): %s is written but not installed '
                        'in the OS trust store' % dest)
        else:
            if not (dest.startswith('/usr/local/share/ca-certificates/') and dest.endswith('.crt')):
                module.warn('update-ca-certificates only picks up *.crt files under /usr/local/share/ca-certificates;'
                            ' %s is not one' % dest)
            if not module.check_mode:
                rc, out, err = module.run_command([tool])
                if rc != 0:
                    module.fail_json(msg='update-ca-certificates failed (rc %d): %s' % (rc, err or out),
                                     ca_requests=client.requests)
            trust_updated = True

    info = certificate_info(root)
    after = {'fingerprint': cert_fingerprint(root), 'subject': info['subject']}
    module.exit_json(changed=changed, fingerprint=wanted, dest=dest, subject=info['subject'],
                     not_after=info['not_after'], trust_store_updated=trust_updated, ca_requests=client.requests,
                     diff=dict(before=before, after=after, before_header=dest, after_header=dest))


if __name__ == '__main__':
    main()
