# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CertificateManager: the step_ca_certificate module's work on one certificate (assess the files, issue, renew or
re-issue under the lock shared with the renewal timer, revoke, report in check mode).

The Step-CA protocol, X.509 and file handling come from the step_ca package (module_utils/step_ca), which stays
free of ansible imports because guests run it too; this file is the Ansible-facing part.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.common import (
    CARequestError, REVOCATION_REASONS, StepCAError,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.x509 import (
    certificate_info, chains_to, load_certificate_file, wanted_sans,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.client import (
    issue_certificate, renew_certificate, revoke_certificate,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.files import certificate_lock, install_certificate
from ansible_collections.thinkheads.phoenix.plugins.module_utils.step_ca.renew import (
    assess_certificate, read_intermediates,
)


def octal_mode(value):
    """The mode as an int when it is octal, else None (symbolic modes are applied afterwards by Ansible)."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text, 8)
    return None


def summary(info):
    if not info:
        return {}
    return {key: info[key] for key in ('common_name', 'sans', 'serial', 'not_after', 'issuer', 'key_type')}


def read_password(module):
    params = module.params
    if params['provisioner_password'] is not None:
        return params['provisioner_password']
    if params['provisioner_password_file']:
        try:
            with open(params['provisioner_password_file']) as handle:
                return handle.read().rstrip('\r\n')
        except (IOError, OSError) as exc:
            module.fail_json(msg='cannot read provisioner_password_file %s: %s'
                             % (params['provisioner_password_file'], to_native(exc)))
    return None


def fs_attributes(module, path, mode, changed, diff=None):
    args = module.load_file_common_arguments(dict(path=path, owner=module.params['owner'],
                                                  group=module.params['group'], mode=mode))
    return module.set_fs_attributes_if_different(args, changed, diff)


def past(action):
    return {'none': 'none', 'issue': 'issued', 'reissue': 'reissued', 'renew': 'renewed'}[action]


def diff(path, before, after):
    return dict(before_header=path, after_header=path, before=before, after=after)


class CertificateManager:
    """One certificate and its key at the configured paths: issued, renewed, re-issued or revoked."""

    def __init__(self, module, client):
        self.module = module
        self.client = client

    def revoke(self):
        params = self.module.params
        path = params['cert_path']
        if not os.path.exists(path):
            self.module.exit_json(changed=False, action='none', reason='no certificate at %s' % path,
                                  ca_requests=self.client.requests)
        cert = load_certificate_file(path)[0]
        info = certificate_info(cert)
        result = dict(summary(info), ca_requests=self.client.requests)
        if self.module.check_mode:
            self.module.exit_json(changed=True, action='revoked',
                                  reason='serial %s would be revoked (if not already)' % info['serial'], **result)
        password = read_password(self.module)
        done = revoke_certificate(self.client, cert, path, params['key_path'], params['provisioner'], password,
                                  reason=params['revoke_reason'],
                                  reason_code=REVOCATION_REASONS[params['revoke_reason']])
        if done:
            self.module.exit_json(changed=True, action='revoked', reason='serial %s revoked' % info['serial'], **result)
        self.module.exit_json(changed=False, action='none', reason='serial %s was already revoked' % info['serial'],
                              **result)

    def assess(self, roots, threshold, fetched=None):
        """(assessment, action, reason) of the files at the configured paths (``fetched``: caches the CA's
        answers)."""
        fetched = {} if fetched is None else fetched
        params = self.module.params
        cert_path, key_path, chain_path = params['cert_path'], params['key_path'], params['chain_path']
        intermediates = read_intermediates(chain_path, cert_path)

        # Without a local chain, the issuer check needs the CA's intermediates (one GET, never /sign).
        if os.path.exists(cert_path) and not intermediates:
            try:
                leaf = load_certificate_file(cert_path)[0]
                if not chains_to(leaf, [], roots):
                    if 'intermediates' not in fetched:
                        fetched['intermediates'] = self.client.intermediates()
                    intermediates = fetched['intermediates']
            except (StepCAError, ValueError):
                pass

        assessment = assess_certificate(cert_path, key_path, params['common_name'], params['sans'],
                                        params['key_type'], roots, intermediates, threshold,
                                        include_cn=params['include_cn_in_sans'])
        action, reason = assessment['action'], assessment['reason']
        if action == 'none' and params['force']:
            action, reason = 'reissue', 'force=true'
        return assessment, action, reason

    def present(self, roots, threshold, lifetime):
        params = self.module.params
        fetched = {}
        assessment, action, reason = self.assess(roots, threshold, fetched)
        if action == 'none' or self.module.check_mode:
            self.report(assessment, action, reason)
        try:
            with certificate_lock(params['lock_file'], params['lock_timeout']) as locked:
                if not locked and params['lock_file']:
                    self.module.warn('no lock taken: the directory of lock_file %s does not exist'
                                     % params['lock_file'])
                # What the timer may have done while this run waited for the lock.
                assessment, action, reason = self.assess(roots, threshold, fetched)
                if action == 'none':
                    self.report(assessment, action, reason)
                self.write(assessment, action, reason, lifetime)
        except OSError as exc:
            self.module.fail_json(msg='cannot write the certificate files: %s' % to_native(exc),
                                  ca_requests=self.client.requests)

    def report(self, assessment, action, reason):
        """Exit without writing: nothing due, or check mode (ownership and mode drift repaired or reported)."""
        params = self.module.params
        cert_path, key_path, chain_path = params['cert_path'], params['key_path'], params['chain_path']
        before = summary(assessment['info'])
        changed = action != 'none'
        after = dict(before)
        if changed:
            after.update(common_name=params['common_name'], key_type=params['key_type'],
                         not_after='(new certificate)', serial='(new certificate)',
                         sans=wanted_sans(params['common_name'], params['sans'], params['include_cn_in_sans']))
            if action == 'renew':
                after.update(common_name=before['common_name'], sans=before['sans'], key_type=before['key_type'])
        # Ownership and mode of the files already there, through the links (in check mode: only reported).
        changed_attrs = False
        for path, path_mode in ((cert_path, params['mode']), (chain_path, params['mode']),
                                (key_path, params['key_mode'])):
            if path and os.path.exists(path):
                changed_attrs = fs_attributes(self.module, os.path.realpath(path), path_mode, changed_attrs)
        self.module.exit_json(changed=changed or changed_attrs, action=past(action), reason=reason,
                              ca_requests=self.client.requests, diff=diff(cert_path, before, after), **before)

    def write(self, assessment, action, reason, lifetime):
        params = self.module.params
        cert_path = params['cert_path']
        before = summary(assessment['info'])
        if action == 'renew':
            try:
                leaf, rest = renew_certificate(self.client, cert_path, params['key_path'])
                self.write_files(None, leaf, rest)
            except CARequestError as exc:
                action = 'reissue'
                reason = '%s; renewal refused (%s), re-issued' % (reason, exc.detail or exc)
        if action in ('issue', 'reissue'):
            password = read_password(self.module)
            sans = wanted_sans(params['common_name'], params['sans'], params['include_cn_in_sans'])
            key_pem, leaf, rest = issue_certificate(self.client, params['provisioner'], password,
                                                    params['common_name'], sans, params['key_type'], lifetime=lifetime)
            self.write_files(key_pem, leaf, rest)
        info = certificate_info(load_certificate_file(cert_path)[0])
        after = summary(info)
        self.module.exit_json(changed=True, action=past(action), reason=reason, ca_requests=self.client.requests,
                              diff=diff(cert_path, before, after), **after)

    def write_files(self, key_pem, leaf, rest):
        """The new version in place (install_certificate); symbolic modes applied afterwards to its files."""
        params = self.module.params
        owner, group = params['owner'], params['group']
        mode, key_mode = octal_mode(params['mode']), octal_mode(params['key_mode'])
        if key_pem is not None and key_mode is None:
            key_mode = 0o600
        install_certificate(params['cert_path'], params['key_path'], leaf, rest, key_pem=key_pem,
                            chain_path=params['chain_path'], mode=mode, key_mode=key_mode, owner=owner, group=group)
        for path, path_mode in ((params['key_path'], params['key_mode']), (params['cert_path'], params['mode']),
                                (params['chain_path'], params['mode'])):
            if path:
                fs_attributes(self.module, os.path.realpath(path), path_mode, True)
