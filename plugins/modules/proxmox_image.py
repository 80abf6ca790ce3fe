#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
module: proxmox_image
short_description: A VM cloud image or an LXC OS template on a Proxmox storage, downloaded and verified by Proxmox
version_added: 0.2.0
author:
  - Thinkheads platform team (@thinkheads)
description:
  - Makes sure one file a guest is built from is on a Proxmox storage, and returns what to build it from - the volume
    ID of an LXC OS template (C(ostemplate)), or the C(import-from) source of a VM's boot disk.
  - Looks first at the storage's content (C(GET /nodes/{node}/storage/{storage}/content), one call per content
    type). A cloud image is looked for as C(import) content, under its name with the extension of O(image_format)
    when it ends in C(.img) (Proxmox's C(import) content takes C(.qcow2), C(.raw), C(.vmdk) and C(.ova) only), and
    then as C(iso) content under its own name.
  - When the file is missing and O(url) is given, Proxmox downloads it (C(POST .../download-url)) and verifies
    O(checksum) itself; the module waits for the task and fails with the task's log when it fails (a checksum
    mismatch included). An OS template without O(url) is looked up in Proxmox's appliance index (C(aplinfo)) and
    downloaded from there.
  - When the file is missing and cannot be brought, the module fails before any write, naming the file, the storage
    and what to set (O(hint) adds the caller's words, such as the guest and the variable).
  - An image found only as C(iso) content cannot be imported by an API token (Proxmox imports disks from C(images)
    or C(import) volumes, or from an absolute path for root@pam only); without O(url) the module fails saying so.
extends_documentation_fragment:
  - thinkheads.phoenix.proxmox
  - thinkheads.phoenix.attributes
options:
  name:
    description:
      - File name, as a config names it - V(noble-server-cloudimg-amd64.img) (C(template_image) of a VM) or
        V(ubuntu-24.04-standard_24.04-2_amd64.tar.zst) (an LXC C(template)).
    type: str
    required: true
  storage:
    description: Storage the file is on or is downloaded to (file based, with the content type enabled).
    type: str
    default: local
  content:
    description:
      - Content type. Defaults to V(vztmpl) for C(.tar*) archives and V(import) for anything else.
    type: str
    choices: [import, iso, vztmpl]
  image_format:
    description:
      - Format of a C(.img) cloud image, which names its C(import) volume (V(noble-server-cloudimg-amd64.qcow2)).
        Ubuntu's and Debian's cloud images are qcow2.
    type: str
    choices: [qcow2, raw, vmdk]
    default: qcow2
  url:
    description:
      - Where Proxmox downloads the file from when the storage lacks it (V(https://...)). An V(http://) URL is
        accepted only with a O(checksum).
    type: str
  checksum:
    description: Expected checksum (hex) of the download; Proxmox verifies it and fails the task on a mismatch.
    type: str
  checksum_algorithm:
    description: Algorithm of O(checksum).
    type: str
    choices: [md5, sha1, sha224, sha256, sha384, sha512]
  verify_certificates:
    description: Let Proxmox verify the TLS certificate of O(url). Keep it on.
    type: bool
    default: true
  appliance_index:
    description: Look an OS template up in Proxmox's appliance index (C(aplinfo)) when no O(url) is given.
    type: bool
    default: true
  download_timeout:
    description: Seconds to wait for a download task.
    type: int
    default: 1800
  hint:
    description:
      - Words added to the failure message when the file is missing and cannot be brought, such as the guest that
        needs it and the variable that gives its source.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - proxmoxer
  - requests
notes:
  - The token needs C(Datastore.AllocateTemplate) on the storage and C(Sys.Audit) + C(Sys.Modify) on the node to
    download (Proxmox's rules for C(download-url)), and C(Datastore.Audit) to list the content.
'''

EXAMPLES = r'''
- name: The cloud image of VM template 9000, downloaded by Proxmox when missing
  thinkheads.phoenix.proxmox_image:
    name: noble-server-cloudimg-amd64.img
    storage: local
    url: https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img
    checksum: "{{ noble_sha256 }}"
    checksum_algorithm: sha256
  register: noble

- name: An LXC OS template from Proxmox's appliance index
  thinkheads.phoenix.proxmox_image:
    name: debian-12-standard_12.7-1_amd64.tar.zst
    storage: local

- name: Only check that an image is there (nothing is downloaded in check mode)
  thinkheads.phoenix.proxmox_image:
    name: debian-12-genericcloud-amd64.qcow2
    hint: "set template_image_url for VM 9000"
  check_mode: true
'''

RETURN = r'''
volid:
  description: Volume ID of the file (after the download in a real run; the planned one in check mode).
  returned: success
  type: str
  sample: local:import/noble-server-cloudimg-amd64.qcow2
import_from:
  description: What C(import-from) of a VM disk takes for a disk image (the C(import) volume); empty for OS templates.
  returned: success
  type: str
  sample: local:import/noble-server-cloudimg-amd64.qcow2
ostemplate:
  description: The volume ID as C(ostemplate) of an LXC create takes it; empty for disk images.
  returned: success
  type: str
  sample: local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst
source:
  description: Where the file came from - V(storage) (it was there), V(url) or V(appliance_index).
  returned: success
  type: str
  sample: url
size:
  description: Size in bytes of the file as the storage lists it; 0 in check mode.
  returned: success
  type: int
  sample: 2361393152
task:
  description: Exit status of the download task.
  returned: when a download ran
  type: str
  sample: OK
api_calls:
  description: API calls made.
  returned: always
  type: int
  sample: 1
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox import (
    HAS_PROXMOXER, PveClient, PveError, proxmox_argument_spec,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image import (
    checksum_errors, content_of, name_errors, url_errors,
)
from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image_manager import ImageManager
from ansible_collections.thinkheads.phoenix.plugins.module_utils.validation import check_options


def _input_errors(params):
    """'<option>: <problem>' for what the argument spec cannot say (names, URLs, checksums)."""
    content = params['content'] or content_of(params['name'])
    errors = ['name: %s' % e for e in name_errors(params['name'], content)]
    if params['url']:
        errors += ['url: %s' % e for e in url_errors(params['url'], schemes=('https', 'http'))]
        if str(params['url']).startswith('http://') and not params['checksum']:
            errors.append('url: an http:// URL needs a checksum (nothing else would verify what arrives)')
    errors += ['checksum: %s' % e for e in checksum_errors(params['checksum'], params['checksum_algorithm'])]
    if params['checksum'] and not params['url']:
        errors.append('checksum: given without url')
    return errors


def main():
    argument_spec = proxmox_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True),
        storage=dict(type='str', default='local'),
        content=dict(type='str', choices=['import', 'iso', 'vztmpl']),
        image_format=dict(type='str', default='qcow2', choices=['qcow2', 'raw', 'vmdk']),
        url=dict(type='str'),
        checksum=dict(type='str'),
        checksum_algorithm=dict(type='str', choices=['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']),
        verify_certificates=dict(type='bool', default=True),
        appliance_index=dict(type='bool', default=True),
        download_timeout=dict(type='int', default=1800),
        hint=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[('api_token_id', 'api_password')])
    check_options(module, 'proxmox_image')
    errors = _input_errors(module.params)
    if errors:
        module.fail_json(msg='; '.join(errors))
    if not HAS_PROXMOXER:
        module.fail_json(msg='the Python library proxmoxer is required on the host running this module')
    client = None
    try:
        client = PveClient(**module.params)
        result = ImageManager(module, client).run()
    except PveError as exc:
        for note in (client.notes if client else []):
            module.warn(note)
        module.fail_json(msg=exc.message, status=exc.status, errors=exc.errors,
                         api_calls=len(client.calls) if client else 0)
    result['api_calls'] = len(client.calls)
    for note in client.notes:
        module.warn(note)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
