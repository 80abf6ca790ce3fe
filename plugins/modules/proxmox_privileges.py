#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: proxmox_privileges
short_description: Check that the Proxmox API identity holds the privileges the collection needs
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Reads C(GET /access/permissions) for the identity the module logs in as (the API token, or O(api_user)), once
    per ACL path, and fails naming every missing privilege and its path, with the C(pveum) lines that grant them.
  - The privileges and the path each is checked on come from one table (C(plugins/module_utils/proxmox_privs.py)),
    the same that the C(pveum) recipe in the README and docs/proxmox.md is; VM privileges on C(/vms), storage
    privileges on C(/storage), C(SDN.Use) on C(/sdn/zones/localnetwork), C(Sys.*) on C(/). Proxmox checks each
    call on the guest's or storage's own path below these, so a privilege counts only when it propagates.
  - C(root@pam) (a password login) holds every privilege. An API token without privilege separation holds its
    user's privileges; one with it, what it and its user both hold (Proxmox computes this; the module only reads).
  - Only reads; never writes. Used once by the preflight play of C(playbooks/create.yml), before any write.
extends_documentation_fragment:
  - thinkheads.phoenix.proxmox
  - thinkheads.phoenix.attributes
options:
  privileges:
    description:
      - The privileges to check. Default the collection's list (the C(pveum) recipe's), in its order.
      - Each must be a privilege Proxmox VE knows (C(VM.Allocate), C(Sys.Audit), ...).
    type: list
    elements: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
requirements:
  - proxmoxer
  - requests
'''

EXAMPLES = r'''
- name: Stop unless the API token holds every privilege the collection needs
  thinkheads.phoenix.proxmox_privileges:
  delegate_to: localhost
  run_once: true

- name: Check a smaller set (a platform without cluster firewall aliases needs no Sys.Modify)
  thinkheads.phoenix.proxmox_privileges:
    privileges: [VM.Audit, VM.Allocate, VM.Config.Options, Datastore.Audit, Sys.Audit]
  delegate_to: localhost

- name: Only report what is missing
  thinkheads.phoenix.proxmox_privileges:
  register: pve_privileges
  ignore_errors: true
'''

RETURN = r'''
authid:
  description: The identity checked (C(user@realm!token) or C(user@realm)).
  returned: always
  type: str
  sample: phoenix@pve!ansible
missing:
  description: Each privilege not held (or held without propagation), with the path it was checked on.
  returned: always
  type: list
  elements: dict
  sample: [{"privilege": "VM.Snapshot", "path": "/vms", "reason": "not granted"}]
permissions:
  description: What C(GET /access/permissions) answered, per path checked (privilege -> propagate flag).
  returned: always
  type: dict
  sample: {"/vms": {"VM.Audit": 1, "VM.Allocate": 1}, "/": {"Sys.Audit": 1}}
privileges:
  description: The privileges checked, each with its path.
  returned: always
  type: dict
  sample: {"VM.Audit": "/vms", "Sys.Audit": "/"}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    HAS_PROXMOXER, PveClient, PveError, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_privs import (
    default_privileges, missing_message, missing_privileges, privilege_path,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def main():
    spec = proxmox_argument_spec()
    spec.update(privileges=dict(type='list', elements='str'))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_one_of=[('api_token_id', 'api_password')])
    check_options(module, 'proxmox_privileges')
    if not HAS_PROXMOXER:
        module.fail_json(msg='the Python library proxmoxer is required on the host running this module')
    privileges = list(dict.fromkeys(module.params['privileges'] or default_privileges()))
    paths = sorted(set(privilege_path(priv) for priv in privileges))
    held = {}
    try:
        client = PveClient(**module.params)
        authid = client.authid
        for path in paths:
            answer = client.get_params('access/permissions', {'path': path}) or {}
            held[path] = answer.get(path) or {}
    except PveError as exc:
        module.fail_json(msg='reading the privileges of the API identity: %s' % exc.message, status=exc.status,
                         errors=exc.errors)
    missing = missing_privileges(privileges, held)
    result = dict(changed=False, authid=authid, missing=missing, permissions=held,
                  privileges=dict((priv, privilege_path(priv)) for priv in privileges))
    if missing:
        module.fail_json(msg=missing_message(authid, missing, module.params['privileges']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
