#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: step_ca_provisioner
short_description: Declarative JWK and ACME provisioners in step-ca's ca.json
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Adds, updates or removes one provisioner in the C(authority.provisioners) list of step-ca's C(ca.json) on
    the CA host. step-ca reads the file at start and on C(SIGHUP); reload it when the task reports a change.
  - For O(type=JWK) the provisioner needs a key pair. The module keeps the existing key when it still
    decrypts with O(password) (so repeated runs change nothing, also for keys created by C(step ca init));
    otherwise it generates an EC P-256 key and stores it encrypted with O(password) the way step does
    (JWE, PBES2-HS256+A128KW, A256GCM, 100000 PBKDF2 iterations), with the key thumbprint as C(kid).
  - O(claims) replace the provisioner's claims as a whole; durations are checked
    (C(minTLSCertDuration) <= C(defaultTLSCertDuration) <= C(maxTLSCertDuration), with C(authority.claims)
    and step-ca's defaults filling the gaps) before anything is written.
  - Other fields of an existing entry (options, templates) and every other part of C(ca.json) are kept.
    The file is replaced atomically with its owner and mode.
requirements:
  - cryptography
  - jwcrypto
options:
  config:
    description: Path of step-ca's C(ca.json).
    type: path
    required: true
  name:
    description: Provisioner name (for JWK, the C(iss) of its tokens).
    type: str
    required: true
  type:
    description: Provisioner type. Changing the type of an existing provisioner replaces it.
    type: str
    choices: [JWK, ACME]
    default: JWK
  password:
    description: Password of the JWK provisioner's encrypted key. Required for O(type=JWK), O(state=present). Never logged.
    type: str
  claims:
    description:
      - Provisioner claims as step-ca names them, for example C(minTLSCertDuration), C(maxTLSCertDuration),
        C(defaultTLSCertDuration) (durations such as V(5m), V(24h); V(2d) is written as V(48h)),
        C(disableRenewal), C(allowRenewalAfterExpiry) (booleans). SSH claims are accepted too.
      - Not given leaves the claims as they are; V({}) removes them.
    type: dict
  challenges:
    description: ACME challenge types the provisioner offers. Not given leaves them as they are (step-ca's default is all).
    type: list
    elements: str
  force_cn:
    description: ACME C(forceCN) (put the first SAN into the subject common name). Not given leaves it as it is.
    type: bool
  state:
    description: Whether the provisioner exists.
    type: str
    choices: [present, absent]
    default: present
  backup:
    description: Keep a timestamped copy of C(ca.json) before changing it.
    type: bool
    default: false
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - The diff and the returned provisioner show the encrypted key shortened; the password never appears.
seealso:
  - module: thinkheads.phoenix.step_ca_certificate
'''

EXAMPLES = r'''
- name: JWK provisioner for the Phoenix services
  thinkheads.phoenix.step_ca_provisioner:
    config: /etc/step-ca/config/ca.json
    name: services
    type: JWK
    password: "{{ vault_step_ca_services_password }}"
    claims:
      minTLSCertDuration: 5m
      defaultTLSCertDuration: 720h
      maxTLSCertDuration: 2160h
      allowRenewalAfterExpiry: false
  notify: Reload step-ca

- name: ACME provisioner for Traefik
  thinkheads.phoenix.step_ca_provisioner:
    config: /etc/step-ca/config/ca.json
    name: acme
    type: ACME
    challenges: [http-01, tls-alpn-01]
    force_cn: true
    claims:
      defaultTLSCertDuration: 168h
      maxTLSCertDuration: 720h
  notify: Reload step-ca

- name: Retire the provisioner of the old lab, keeping a copy of ca.json
  thinkheads.phoenix.step_ca_provisioner:
    config: /etc/step-ca/config/ca.json
    name: lab
    state: absent
    backup: true
  notify: Reload step-ca

- name: Short-lived certificates for the vLLM servers, renewable after expiry, the claims of ca.json kept
  thinkheads.phoenix.step_ca_provisioner:
    config: /etc/step-ca/config/ca.json
    name: vllm
    password: "{{ vault_step_ca_vllm_password }}"
    claims:
      defaultTLSCertDuration: 24h
      maxTLSCertDuration: 48h
      allowRenewalAfterExpiry: true
  diff: true
  register: vllm_provisioner
  notify: Reload step-ca
'''

RETURN = r'''
provisioner:
  description: The provisioner entry after the run (encrypted key shortened); empty when absent.
  returned: always
  type: dict
  sample:
    type: JWK
    name: services
    key: {use: sig, kty: EC, kid: 3lUPa0vj6Iy3LWZqRNRjcWHy3hPTsRw5YJ1bDGGShbs, crv: P-256, alg: ES256,
          x: vWbaDcUnfb9ByEZwPw5OdVsp_PIO5RZ8yK86KyIQG4s, y: GHtTjHMxJ1ZRHjaEmP3hb1j7fzWGsWqUjv6VbTxnt9w}
    encryptedKey: eyJhbGciOiJQQkVTMi1IUzI1...
    claims: {minTLSCertDuration: 5m, defaultTLSCertDuration: 720h, maxTLSCertDuration: 2160h,
             allowRenewalAfterExpiry: false}
key_note:
  description: For JWK, whether the existing key was kept or a new one generated (and why).
  returned: when type is JWK and state is present
  type: str
  sample: kept the existing key
backup_file:
  description: Path of the backup copy.
  returned: when backup is true and the file changed
  type: str
  sample: /etc/step-ca/config/ca.json.12345.2026-12-05@03:12:44~
'''

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.common import require_libraries, StepCAError
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.files import atomic_write
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.provisioners import (
    desired_provisioner, dump_ca_config, find_provisioner, redact_provisioner,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type='path', required=True),
            name=dict(type='str', required=True),
            type=dict(type='str', choices=['JWK', 'ACME'], default='JWK'),
            password=dict(type='str', no_log=True),
            claims=dict(type='dict'),
            challenges=dict(type='list', elements='str'),
            force_cn=dict(type='bool'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            backup=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    check_options(module, 'step_ca_provisioner')
    params = module.params
    path = params['config']
    if params['state'] == 'present' and params['type'] == 'JWK' and not params['password']:
        module.fail_json(msg='type=JWK with state=present needs password (the key of the provisioner is encrypted with it)')
    try:
        require_libraries(jose=params['type'] == 'JWK')
    except StepCAError as exc:
        module.fail_json(msg=to_native(exc))
    try:
        with open(path) as handle:
            text = handle.read()
        config = json.loads(text)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot read %s: %s' % (path, to_native(exc)))
    except ValueError as exc:
        module.fail_json(msg='%s is not valid JSON: %s' % (path, to_native(exc)))
    if not isinstance(config, dict):
        module.fail_json(msg='%s is not a step-ca configuration (expected a JSON object)' % path)

    authority = config.setdefault('authority', {})
    if not isinstance(authority, dict):
        module.fail_json(msg='%s is not a step-ca configuration: "authority" must be a JSON object, got %s'
                         % (path, type(authority).__name__))
    provisioners = authority.get('provisioners') or []
    if not isinstance(provisioners, list):
        module.fail_json(msg='%s is not a step-ca configuration: "authority.provisioners" must be a list, got %s'
                         % (path, type(provisioners).__name__))
    for position, entry in enumerate(provisioners):
        if not isinstance(entry, dict) or not isinstance(entry.get('name'), str):
            module.fail_json(msg='%s is not a step-ca configuration: authority.provisioners[%d] must be an object '
                                 'with a "name" string, got %s' % (path, position, json.dumps(entry)[:80]))
    index, current = find_provisioner(config, params['name'])
    note = None
    if params['state'] == 'absent':
        wanted = None
        if current is not None:
            provisioners = provisioners[:index] + provisioners[index + 1:]
    else:
        try:
            wanted, note = desired_provisioner(current, params['name'], params['type'], params['password'],
                                               params['claims'], params['challenges'], params['force_cn'],
                                               authority.get('claims'))
        except StepCAError as exc:
            module.fail_json(msg=to_native(exc))
        if current is None:
            provisioners = provisioners + [wanted]
        else:
            provisioners = provisioners[:index] + [wanted] + provisioners[index + 1:]
    changed = wanted != current
    result = dict(changed=changed, provisioner=redact_provisioner(wanted) or {},
                  diff=dict(before=_show(current), after=_show(wanted),
                            before_header='%s: %s' % (path, params['name']),
                            after_header='%s: %s' % (path, params['name'])))
    if note is not None:
        result['key_note'] = note
    if changed and not module.check_mode:
        authority['provisioners'] = provisioners
        if params['backup']:
            result['backup_file'] = module.backup_local(path)
        try:
            atomic_write(path, dump_ca_config(config))
        except (IOError, OSError) as exc:
            module.fail_json(msg='cannot write %s: %s' % (path, to_native(exc)))
    module.exit_json(**result)


def _show(entry):
    if not entry:
        return ''
    return json.dumps(redact_provisioner(entry), indent=2, sort_keys=True) + '\n'


if __name__ == '__main__':
    main()
