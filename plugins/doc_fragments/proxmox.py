# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  api_url:
    description:
      - Proxmox VE API address, for example V(https://pve.example.com:8006). Only HTTPS is accepted.
      - Falls back to the E(PHOENIX_PVE_URL) environment variable.
    type: str
    required: true
  api_user:
    description:
      - User for password authentication, and the user part of O(api_token_id) when it has none.
      - Falls back to E(PHOENIX_PVE_USER).
    type: str
    default: root@pam
  api_token_id:
    description:
      - API token ID, as V(user@realm!tokenid) or just V(tokenid) (the user is then O(api_user)).
      - Falls back to E(PHOENIX_PVE_TOKEN_ID).
    type: str
  api_token_secret:
    description:
      - API token secret (UUID). Falls back to E(PHOENIX_PVE_TOKEN_SECRET).
    type: str
  api_password:
    description:
      - Password for ticket authentication, used when no token is given. Falls back to E(PHOENIX_PVE_PASSWORD).
    type: str
  validate_certs:
    description:
      - Verify the API's TLS certificate. Keep it on; point O(ca_file) at the CA that signed the certificate.
      - Falls back to E(PHOENIX_PVE_VALIDATE_CERTS).
    type: bool
    default: true
  ca_file:
    description:
      - PEM file with the CA certificate(s) that sign the API's certificate. Falls back to E(PHOENIX_PVE_CA_FILE).
    type: path
  node:
    description:
      - Proxmox node the guests live on. Falls back to E(PHOENIX_PVE_NODE).
    type: str
    default: pve
  api_timeout:
    description: Seconds to wait for one API response.
    type: int
    default: 30
  api_retries:
    description:
      - Retries, with exponential backoff, of reads that failed with a connection error or HTTP 502/503/504/595/596.
      - Writes (POST, PUT, DELETE) are retried only when they certainly never reached Proxmox (no connection, a
        connect timeout, HTTP 503/595). After a read timeout or HTTP 502/504/596 the write may have run (pveproxy
        answers 596 when pvedaemon takes longer than 30 s), so the module re-reads the guest and continues from
        what it finds instead of sending it again (a create or clone then waits for the task that is running).
      - Proxmox's validation errors (HTTP 400) and handler errors (HTTP 500) are never retried, except a guest lock
        (see O(lock_timeout)).
    type: int
    default: 4
  task_timeout:
    description: Seconds to wait for an asynchronous Proxmox task (create, clone, start, ...).
    type: int
    default: 600
  lock_timeout:
    description:
      - Seconds a write is retried while Proxmox refuses it because the guest is locked (C(CT is locked) or
        C(VM is locked) with the lock, such as V(backup), V(disk) or V(clone)) or its config file lock timed out.
        Each wait is reported as a warning naming the lock; a lock that outlasts this fails the module, naming it.
    type: int
    default: 300
notes:
  - An API token needs the privileges of the collection's one list (the README's C(pveum) recipe, which
    M(thinkheads.phoenix.proxmox_privileges) checks), on C(/vms) C(VM.Allocate), C(VM.Audit), C(VM.Clone),
    C(VM.Config.*), C(VM.Migrate) (moving a guest back to its configured node), C(VM.PowerMgmt), C(VM.Snapshot); on
    C(/storage) C(Datastore.AllocateSpace), C(Datastore.AllocateTemplate), C(Datastore.Audit); C(SDN.Use) on the
    bridge's zone; C(Sys.Audit) and C(Sys.Modify) on C(/). Bind mounts and devices (C(mp[n]) with a host path, C(dev[n])) and LXC
    features other than C(nesting) (such as C(keyctl) for Docker) can only be written by C(root@pam) itself
    (O(api_user) with O(api_password)), never by an API token, not even one of C(root@pam); C(proxmox_guest) checks
    this before any write and fails naming the options.
'''
