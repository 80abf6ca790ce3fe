# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guest images on Proxmox storages: VM cloud images (content ``import`` or ``iso``) and LXC OS templates
(content ``vztmpl``), found in a storage's content or brought there by Proxmox itself.

One source of truth for the rules the config model, the ``proxmox_image`` module and ``proxmox_guest`` share:

- the checksum algorithms Proxmox's ``download-url`` accepts and the length of each hex digest;
- the volume name a file gets per content type (Proxmox's extension rules, pve-storage ``src/PVE/Storage.pm``:
  ``$ISO_EXT_RE_0`` .iso/.img, ``$VZTMPL_EXT_RE_1`` .tar[.gz|.xz|.zst|.bz2], ``$UPLOAD_IMPORT_EXT_RE_1``
  .ova/.qcow2/.raw/.vmdk). A cloud image published as ``.img`` (Ubuntu's and Debian's are qcow2) is stored as
  ``import`` content under its stem plus the format's extension, since ``import`` takes no ``.img``;
- what ``import-from`` may point at (qemu-server ``src/PVE/API2/Qemu.pm`` check_storage_access: a volume of type
  ``images`` or ``import``, or an absolute path, which only root@pam may pass). An ``.img`` found only as ``iso``
  content is therefore not used as it is: it is downloaded again as ``import`` content when a source is known,
  otherwise the error says how to proceed.

``ImageStorage`` looks a file up (one ``GET .../content`` per content type asked), and when it is missing and a
source is known downloads it with ``POST /nodes/{node}/storage/{storage}/download-url`` (Proxmox verifies the
checksum) or, for an OS template in Proxmox's appliance index, ``POST /nodes/{node}/aplinfo``, and waits for the
task. A failed task raises with its log.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# pve-storage src/PVE/API2/Storage/Status.pm download_url: the checksum-algorithm enum
CHECKSUM_HEX_LENGTHS = {'md5': 32, 'sha1': 40, 'sha224': 56, 'sha256': 64, 'sha384': 96, 'sha512': 128}
CONTENT_TYPES = ('import', 'iso', 'vztmpl')
IMPORT_FORMATS = ('qcow2', 'raw', 'vmdk')

_VZTMPL_RE = re.compile(r'\.(tar|tar\.(gz|xz|zst|bz2))$', re.I)
_ISO_RE = re.compile(r'\.(iso|img)$', re.I)
_IMPORT_RE = re.compile(r'\.(ova|qcow2|raw|vmdk)$')
# pve-storage src/PVE/Storage.pm $SAFE_CHAR_CLASS_RE: the characters a volume file name may hold
_SAFE_NAME_RE = re.compile(r'^[A-Za-z0-9_.+-]+$')


def checksum_errors(checksum, algorithm):
    """Messages about a checksum and its algorithm (empty when both are absent or both are right)."""
    if not checksum and not algorithm:
        return []
    if checksum and not algorithm:
        return ['a checksum needs its algorithm (one of %s)' % ', '.join(sorted(CHECKSUM_HEX_LENGTHS))]
    if algorithm and not checksum:
        return ['checksum algorithm %s is given without a checksum' % algorithm]
    if algorithm not in CHECKSUM_HEX_LENGTHS:
        return ['unknown checksum algorithm %r (Proxmox knows %s)' % (algorithm, ', '.join(sorted(CHECKSUM_HEX_LENGTHS)))]
    want = CHECKSUM_HEX_LENGTHS[algorithm]
    text = str(checksum)
    if not re.match(r'^[0-9A-Fa-f]+$', text):
        return ['the %s checksum is not hexadecimal: %r' % (algorithm, text[:20])]
    if len(text) != want:
        return ['a %s checksum has %d hex digits, this one %d' % (algorithm, want, len(text))]
    return []


def url_errors(url, schemes=('https',)):
    """Messages about a download URL: one of ``schemes``, with a host and a file path."""
    text = str(url or '')
    match = re.match(r'^([a-z]+)://[^\s/?#]+/\S+$', text)
    if not match or match.group(1) not in schemes:
        return ['%r is not an %s URL of a file (%s://host/path/file)' % (text[:80], ' or '.join(schemes), schemes[0])]
    return []


def content_of(name):
    """The content type a file name belongs to: vztmpl for OS template archives, import for disk images."""
    return 'vztmpl' if _VZTMPL_RE.search(str(name)) else 'import'


def volume_names(name, content, image_format='qcow2'):
    """[(content, file name)] under which a file may be found, the one to download to first."""
    name = str(name)
    if content == 'vztmpl':
        return [('vztmpl', name)]
    if content == 'iso':
        return [('iso', name)]
    names = []
    if _IMPORT_RE.search(name):
        names.append(('import', name))
    elif _ISO_RE.search(name):
        stem = name[:name.rfind('.')]
        names.append(('import', '%s.%s' % (stem, image_format or 'qcow2')))
        names.append(('iso', name))
    else:
        names.append(('import', '%s.%s' % (name, image_format or 'qcow2')))
    return names


def name_errors(name, content):
    name = str(name or '')
    if not name or '/' in name or not _SAFE_NAME_RE.match(name):
        return ['%r is not a file name Proxmox stores (letters, digits and _ . + -, no directory)' % name[:80]]
    if content == 'vztmpl' and not _VZTMPL_RE.search(name):
        return ['%r is not an OS template archive (.tar, .tar.gz, .tar.xz, .tar.zst or .tar.bz2)' % name]
    if content == 'iso' and not _ISO_RE.search(name):
        return ['%r is not an ISO or .img file' % name]
    return []


class ImageError(Exception):
    """The image is missing and cannot be brought, or its download failed."""


class ImageStorage:
    """Find or bring one file on one storage of one node."""

    def __init__(self, client, storage, name, content=None, image_format='qcow2'):
        self.client = client
        self.storage = storage
        self.name = name
        self.content = content or content_of(name)
        self.names = volume_names(name, self.content, image_format)
        self._listing = {}

    @property
    def base(self):
        return 'nodes/%s/storage/%s' % (self.client.node, self.storage)

    def listing(self, content):
        if content not in self._listing:
            self._listing[content] = self.client.get(self.base + '/content', content=content) or []
        return self._listing[content]

    def find(self):
        """The storage's entry for the file (a dict with volid, content, size, format), or None."""
        for content, filename in self.names:
            volid = '%s:%s/%s' % (self.storage, content, filename)
            for entry in self.listing(content):
                if entry.get('volid') == volid:
                    return dict(entry, content=content)
        return None

    @property
    def target(self):
        """(content, file name) a download goes to."""
        return self.names[0]

    def appliance(self):
        """The entry of Proxmox's appliance index (aplinfo) for an OS template named like the file, or None."""
        for entry in self.client.get('nodes/%s/aplinfo' % self.client.node) or []:
            if entry.get('template') == self.name:
                return entry
        return None

    def download(self, url, checksum=None, algorithm=None, verify_certificates=True, timeout=None):
        content, filename = self.target
        params = {'url': url, 'content': content, 'filename': filename,
                  'verify-certificates': 1 if verify_certificates else 0}
        if checksum:
            params.update({'checksum': checksum.lower(), 'checksum-algorithm': algorithm})
        return self.client.wait_task(self.client.post(self.base + '/download-url', **params), timeout=timeout)

    def download_appliance(self, timeout=None):
        return self.client.wait_task(self.client.post('nodes/%s/aplinfo' % self.client.node,
                                                      storage=self.storage, template=self.name), timeout=timeout)


def image_request(image, images=None, ostemplate=None, image_storage='local', template_storage='local'):
    """The arguments of the proxmox_image module for a guest's ``image`` entry (the config model's), or {}.

    The source is the guest's own (url, checksum) or, when it names none, the entry for the file's name in
    ``images`` (the playbook variable phoenix_images: {file name: {url, checksum, checksum_algorithm}}).
    ``ostemplate`` (a volume ID) replaces a container's template, as the create playbook's override does. The
    storage is the one the config's volume ID names, else ``template_storage`` (OS templates) or
    ``image_storage`` (disk images).
    """
    if not image:
        return {}
    image = dict(image)
    if ostemplate and image.get('content') == 'vztmpl':
        storage, _sep, rest = str(ostemplate).partition(':')
        image.update(storage=storage or None, name=rest.rsplit('/', 1)[-1], url=None, checksum=None,
                     checksum_algorithm=None)
    extra = (images or {}).get(image['name']) or {}
    if not isinstance(extra, dict):
        raise ValueError('phoenix_images[%r] must be a mapping with url, checksum and checksum_algorithm'
                         % image['name'])
    url = image.get('url') or extra.get('url')
    own = bool(image.get('url'))
    storage = image.get('storage') or (template_storage if image.get('content') == 'vztmpl' else image_storage)
    return {
        'name': image['name'], 'storage': storage, 'content': image.get('content'),
        'image_format': image.get('format') or 'qcow2', 'url': url,
        'checksum': image.get('checksum') if own else extra.get('checksum'),
        'checksum_algorithm': image.get('checksum_algorithm') if own else extra.get('checksum_algorithm'),
    }
