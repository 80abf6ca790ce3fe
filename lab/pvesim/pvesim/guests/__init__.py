"""LXC containers and QEMU VMs: create, config, status, snapshots, templates, clones, destroy, migrate.

Importing the package registers every guest route (one module per concern)."""

from __future__ import annotations

from ..errors import ApiError
from . import clone, config, migrate, power, snapshots  # noqa: F401 - registers the routes
from .common import decode_sshkeys

__all__ = ["decode_sshkeys", "ApiError"]
