# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a guest is built from when it is not cloned: a VM's cloud image, a container's OS template.

The config model gives every such guest one ``image`` entry (``phoenix_guest.image`` in the inventory), the single
place create.yml's preflight and download tasks read:

    {"name": "noble-server-cloudimg-amd64.img", "content": "import", "storage": null, "format": "qcow2",
     "url": "https://...", "checksum": "<hex>", "checksum_algorithm": "sha256", "field": "template_image"}

``storage`` is set only when the config names a volume (``local:vztmpl/x.tar.zst``); otherwise the playbook's
storage variable applies. ``field`` is the config key that names the file, for messages. The download source
(``url``, ``checksum``, ``checksum_algorithm``) comes from the guest's optional fields: ``template_image_url`` /
``template_image_checksum`` / ``template_image_checksum_algorithm`` (VMs), ``template_url`` / ``template_checksum``
/ ``template_checksum_algorithm`` (containers).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.thinkheads.phoenix.plugins.module_utils.config.report import pointer
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image import (
    checksum_errors, content_of, url_errors,
)

_VOLID_RE = re.compile(r'^([A-Za-z][A-Za-z0-9_.-]*):(vztmpl|iso|import)/([^/]+)$')


def guest_image(gtype, raw, clone_from, file, base, report):
    """The ``image`` entry of a guest (None for a clone, or a guest that names no image); reports bad sources."""
    if clone_from:
        return None
    if gtype == 'vm':
        field, prefix = 'template_image', 'template_image_'
    else:
        field, prefix = 'template', 'template_'
    text = raw.get(field)
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    storage = None
    match = _VOLID_RE.match(text)
    if match:
        storage, name = match.group(1), match.group(3)
    else:
        name = text.rsplit('/', 1)[-1]
    url = raw.get(prefix + 'url') or None
    checksum = raw.get(prefix + 'checksum') or None
    algorithm = raw.get(prefix + 'checksum_algorithm') or None
    if url is not None:
        for message in url_errors(url):
            report.error(file, pointer(*(base + [prefix + 'url'])), message, 'image.url')
    for message in checksum_errors(checksum, algorithm):
        key = prefix + ('checksum_algorithm' if 'algorithm' in message and checksum else 'checksum')
        report.error(file, pointer(*(base + [key])), message, 'image.checksum')
    if (checksum or algorithm) and not url:
        report.warning(file, pointer(*(base + [prefix + 'checksum'])),
                       'a checksum without %surl is only used when a playbook gives the URL' % prefix, 'image.checksum')
    if url and not checksum:
        report.warning(file, pointer(*(base + [prefix + 'url'])),
                       'the image is downloaded without a checksum: set %schecksum and %schecksum_algorithm so that '
                       'Proxmox verifies it' % (prefix, prefix), 'image.unverified')
    content = 'vztmpl' if gtype != 'vm' else content_of(name)
    return {'name': name, 'content': content, 'storage': storage,
            'format': (raw.get('template_image_format') or 'qcow2') if gtype == 'vm' else None,
            'url': url, 'checksum': checksum.lower() if isinstance(checksum, str) else None,
            'checksum_algorithm': algorithm, 'field': field}
