#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: file_set
short_description: Directories, small files, their service accounts and units, converged in one task
version_added: 0.1.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Converges a whole set of directories and small text files (configurations, systemd units, a library) in one module
    run, where a chain of M(ansible.builtin.file), M(ansible.builtin.copy) and M(ansible.builtin.template) tasks pays
    a round trip per file. An unchanged set costs one task.
  - Every path is read and compared; a file whose content differs is written atomically (a temporary file in the same
    directory, then a rename); owner, group and mode are set where they differ. O(accounts) are handled first, then
    directories, then files in the order given, then O(prune), then O(services).
  - Drift is found as with the single-file modules (a changed byte, mode or owner is repaired and reported in
    RV(changed_paths)).
  - Content is text (UTF-8), rendered on the controller (for example with the C(ansible.builtin.template) lookup).
    Copy binaries and large files with M(ansible.builtin.copy).
options:
  accounts:
    description:
      - Service accounts the directories and files belong to, handled before them, each a dict with C(name) (the
        user), C(group) (its primary group, default the user's name), C(home) (absolute, required; never created
        here), C(shell) (default V(/usr/sbin/nologin)) and C(comment).
      - A missing group is created as a system group (C(groupadd --system)), a missing user as a system user in it
        (C(useradd --system --no-create-home)); an existing user whose group, home, shell or comment differs is
        changed with C(usermod); existing IDs are kept. One C(getent) per database reads them all. What changed is
        in RV(account_changes).
    type: list
    elements: dict
    default: []
  directories:
    description:
      - Directories that must exist (parents are created as needed), each a dict with C(path) (absolute, required)
        and optionally C(owner), C(group) (name or ID) and C(mode) (for example V('0755')). An unset attribute is
        left as it is (a new directory gets the umask's mode).
    type: list
    elements: dict
    default: []
  files:
    description:
      - Files and their content, or files that must be absent, each a dict with
      - C(path) (absolute, required; its directory must exist or be in O(directories); in check mode a missing
        directory is taken as one an earlier task creates);
      - C(content), the whole content (text; required unless C(state) is V(absent) or C(lines) is given);
      - C(lines), instead of C(content), the lines this task owns in a file others write too (for example
        C(/etc/environment)), a list of dicts with C(regexp) and C(line); the last line that matches C(regexp) is
        replaced by C(line), or C(line) is appended when none matches (as M(ansible.builtin.lineinfile) does for one
        line); every other line is kept; a missing file is created with these lines;
      - C(state), V(present) (default) or V(absent) (the file is removed);
      - C(validate), a command that checks new content before it replaces the file, with V(%s) standing for a
        temporary file that holds it (for example V(nginx -t -c %s)); run only when the content changes (not in check
        mode); when it fails, the task fails and the file is left as it was;
      - C(owner), C(group), C(mode), as for O(directories) (a new file gets the umask's mode);
      - C(diff) (default V(true)), V(false) for a file whose content must not be shown (a secret, a long library); it
        is left out of the diff and masked in the task's result. A file that holds a secret also needs C(no_log) on
        the task, which keeps the module's arguments out of the host's log.
    type: list
    elements: dict
    default: []
  prune:
    description:
      - Directories whose regular files matching the patterns must be exactly those present in O(files); any other
        matching file is removed (for example the configurations of certificates no longer listed). Each a dict with
        C(path) (the directory; nothing happens when it does not exist), C(patterns) (shell patterns of the file
        names, default V(['*'])) and C(keep) (names of files kept although the set does not write them, for example
        records another program writes). Subdirectories and links are left alone.
    type: list
    elements: dict
    default: []
  services:
    description:
      - Systemd units these files belong to, handled after the files and O(prune), each a dict with C(name) (the
        unit; a name without a suffix is a C(.service)), C(enabled) (default V(true)) and C(state) (V(started), the
        default, or V(stopped)).
      - One C(systemctl show) reads every unit's state; only what differs is changed (C(systemctl enable), C(start),
        C(disable), C(stop)), and reported in RV(service_changes). Enabled and running mean what they mean to
        M(ansible.builtin.systemd_service) (a unit file state for which C(systemctl is-enabled) succeeds; an active or
        activating unit).
      - C(systemctl daemon-reload) runs first when a file of this set under a unit directory (C(/etc/systemd/system),
        C(/run/systemd/system), C(/lib/systemd/system), C(/usr/lib/systemd/system)) was written or removed, also
        without O(services).
      - A unit that does not exist, or is masked, fails the task. In check mode a unit that does not exist is taken as
        one whose file this task or an earlier one writes (new, disabled and stopped).
      - Restarts after a changed configuration stay with the role's handlers.
    type: list
    elements: dict
    default: []
notes:
  - A path may be named only once in O(directories) and O(files).
  - SELinux contexts and file attributes are not managed.
extends_documentation_fragment:
  - thinkheads.phoenix.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
'''

EXAMPLES = r'''
- name: Configuration directory, two configurations and a unit, in one task
  thinkheads.phoenix.file_set:
    directories:
      - {path: /etc/phoenix/certs, owner: root, group: root, mode: "0755"}
    files:
      - path: /etc/phoenix/certs/web.json
        content: "{{ {'name': 'web', 'cert_path': '/etc/ssl/web.crt'} | to_nice_json }}"
        mode: "0644"
      - path: /etc/systemd/system/phoenix-cert-renew.timer
        content: "{{ lookup('ansible.builtin.template', 'phoenix-cert-renew.timer.j2') }}"
        owner: root
        group: root
        mode: "0644"
      - path: /etc/phoenix/old.json
        state: absent
  register: phoenix_files
  notify: Reload systemd

- name: Exactly the listed configurations in the directory (other *.json files there are removed)
  thinkheads.phoenix.file_set:
    files: "{{ phoenix_cert_configs }}"  # a list of {path: /etc/phoenix/certs/<name>.json, content: ...}
    prune:
      - path: /etc/phoenix/certs
        patterns: ["*.json"]

- name: Two variables in a file that other programs edit too (only these lines are managed)
  thinkheads.phoenix.file_set:
    files:
      - path: /etc/environment
        lines:
          - {regexp: "^SSL_CERT_FILE=", line: "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
          - {regexp: "^REQUESTS_CA_BUNDLE=", line: "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"}
        mode: "0644"

- name: A service's unit and configuration, and the service enabled and running, in one task
  thinkheads.phoenix.file_set:
    files:
      - path: /etc/systemd/system/web.service
        content: "{{ lookup('ansible.builtin.template', 'web.service.j2') }}"
        mode: "0644"
      - path: /etc/web/web.toml
        content: "{{ lookup('ansible.builtin.template', 'web.toml.j2') }}"
        mode: "0644"
    services:
      - name: web.service
  notify: Restart web   # a changed configuration of a running service: the handler restarts it
- name: A file that holds a secret (its content never shown in a diff, nor logged on the host)
  thinkheads.phoenix.file_set:
    files:
      - path: /etc/phoenix/api.env
        content: "API_KEY={{ vault_api_key }}\n"
        mode: "0600"
        diff: false
  no_log: true
'''

RETURN = r'''
changed_paths:
  description: Directories and files created, written, or whose owner, group or mode was set (or would be, in check
    mode), in the order handled.
  returned: always
  type: list
  elements: str
  sample: [/etc/phoenix/certs/web.json]
account_changes:
  description: What was done to the accounts of O(accounts) (or would be, in check mode), one line each.
  returned: always
  type: list
  elements: str
  sample: ['traefik: group created', 'traefik: user created']
service_changes:
  description: What was done to the systemd units (or would be, in check mode), one line each.
  returned: always
  type: list
  elements: str
  sample: ['systemd: daemon-reload', 'traefik.service: enabled', 'traefik.service: started']
removed:
  description: Files removed (C(state=absent) in O(files), or O(prune)), or that would be in check mode.
  returned: always
  type: list
  elements: str
  sample: [/etc/phoenix/certs/old.json]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.file_set import FileSetManager
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def argument_spec():
    # the keys of each element are checked by check_options (module_utils/validation_rules.py, 'file_set'), which
    # names the element and key of a bad value
    return dict(directories=dict(type='list', elements='dict', default=[]),
                files=dict(type='list', elements='dict', default=[]),
                prune=dict(type='list', elements='dict', default=[]),
                services=dict(type='list', elements='dict', default=[]),
                accounts=dict(type='list', elements='dict', default=[]))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    check_options(module, 'file_set')
    module.exit_json(**FileSetManager(module).run())


if __name__ == '__main__':
    main()
