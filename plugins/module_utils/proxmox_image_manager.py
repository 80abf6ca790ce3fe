# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ImageManager: the proxmox_image module's work. It looks the file up on the storage (ImageStorage of
module_utils/proxmox_image.py), brings it when it is missing, and recovers from a download request whose answer
was lost."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import PveError
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image import ImageStorage


class ImageManager:
    """One image or OS template on one storage: found there, or downloaded (from a URL or the appliance index)."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        params = module.params
        self.store = ImageStorage(client, params['storage'], params['name'], params['content'],
                                  params['image_format'])
        self.result = dict(changed=False, volid='', import_from='', ostemplate='', source='storage', size=0)

    def _done(self, entry, source):
        volid = entry['volid']
        self.result.update(volid=volid, source=source, size=int(entry.get('size') or 0))
        if self.store.content == 'vztmpl':
            self.result['ostemplate'] = volid
        else:
            self.result['import_from'] = volid if volid.split(':', 1)[1].startswith('import/') else ''

    def _missing(self, why):
        params = self.module.params
        content, filename = self.store.target
        msg = ('%s is not on storage %s of node %s (looked for %s) and %s' % (
            params['name'], params['storage'], self.client.node,
            ', '.join('%s:%s/%s' % (params['storage'], c, f) for c, f in self.store.names), why))
        if params['hint']:
            msg += '; ' + params['hint']
        self.module.fail_json(msg=msg, api_calls=len(self.client.calls), changed=False)

    def run(self):
        params = self.module.params
        entry = self.store.find()
        if entry is not None and (entry['content'] != 'iso' or self.store.content == 'iso'):
            self._done(entry, 'storage')
            return self.result
        content, filename = self.store.target
        planned = {'volid': '%s:%s/%s' % (params['storage'], content, filename), 'size': 0}
        if params['url']:
            source = 'url'
        elif entry is not None:
            self.module.fail_json(
                msg='%s is on storage %s as ISO content (%s), but Proxmox imports a VM disk only from an import '
                    'volume (or an absolute path, root@pam only); give url (and checksum) so that Proxmox downloads '
                    'it as %s, or copy it to %s on the node' % (
                        params['name'], params['storage'], entry['volid'], planned['volid'],
                        'the import directory of the storage (template/import/%s)' % filename),
                api_calls=len(self.client.calls), changed=False)
        elif content == 'vztmpl' and params['appliance_index'] and self.store.appliance() is not None:
            source = 'appliance_index'
        else:
            self._missing('no source is given (url%s)' % (
                '; it is not in the appliance index either' if content == 'vztmpl' and params['appliance_index']
                else ''))
        self.result.update(changed=True, diff=dict(
            before={}, after={'volid': planned['volid'], 'source': params['url'] if source == 'url' else source},
            before_header='storage %s' % params['storage'], after_header='storage %s' % params['storage']))
        if self.module.check_mode:
            self._done(planned, source)
            return self.result
        try:
            if source == 'url':
                status = self.store.download(params['url'], params['checksum'], params['checksum_algorithm'],
                                             params['verify_certificates'], timeout=params['download_timeout'])
            else:
                status = self.store.download_appliance(timeout=params['download_timeout'])
        except PveError as exc:
            if not exc.ambiguous:
                what = 'downloading %s to storage %s failed' % (params['name'], params['storage'])
                raise PveError('%s: %s' % (what, exc.message), status=exc.status, errors=exc.errors) from exc
            status = self.recover(exc)
        self.result['task'] = (status or {}).get('exitstatus', 'OK')
        self.store._listing.clear()
        entry = self.store.find()
        if entry is None:
            raise PveError('the download of %s ended with %s, but storage %s does not list %s' % (
                params['name'], self.result['task'], params['storage'], planned['volid']))
        self._done(entry, source)
        return self.result

    def recover(self, exc):
        """The answer to the download POST was lost: wait for the file or for the download tasks to end."""
        self.client.notes.append('POST download-url: answer lost (%s); waiting for the file instead of sending the '
                                 'request again' % exc.message)
        waited = 0.0
        while waited < self.module.params['download_timeout']:
            self.store._listing.clear()
            if self.store.find() is not None:
                return {'exitstatus': 'OK'}
            tasks = self.client.get('nodes/%s/tasks' % self.client.node, typefilter='download', source='active') or []
            if not tasks and waited > 0:
                break
            self.client.pause(2.0)
            waited += 2.0
        raise PveError('the download of %s was sent but its answer was lost, and the file did not appear; run again'
                       % self.module.params['name'])
