# -*- coding: utf-8 -*-
# Copyright (c) 2026 Thinkheads
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxmox_image arguments for a guest's image (documented in image_request.yml)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.thinkheads.phoenix.plugins.module_utils.proxmox_image import image_request as _request


def image_request(image, images=None, ostemplate=None, image_storage='local', template_storage='local'):
    try:
        return _request(image, images=images, ostemplate=ostemplate or None, image_storage=image_storage or 'local',
                        template_storage=template_storage or 'local')
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError('image_request: %s' % exc) from exc


class FilterModule(object):

    def filters(self):
        return {'image_request': image_request}
