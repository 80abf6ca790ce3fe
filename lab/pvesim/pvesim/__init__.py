"""pvesim: a Proxmox VE API server for tests and the lab, held to the official API schema."""

__version__ = "0.1.0"
