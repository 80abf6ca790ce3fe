# -*- coding: utf-8 -*-
"""portainersim: a test double of the Portainer CE 2.x API (see server.py and README.md)."""
