"""Helpers shared by the pvesim tests: constants and a small PVE API client."""

from __future__ import annotations

import os
import sys
import time

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PVESIM = os.path.join(REPO, "lab", "pvesim")
if PVESIM not in sys.path:
    sys.path.insert(0, PVESIM)
UNIT = os.path.join(REPO, "tests", "unit")
if UNIT not in sys.path:
    sys.path.insert(0, UNIT)

# The shared poll-with-deadline helpers (they report the last value seen when they give up).
from phoenix_testlib import wait_equal, wait_for  # noqa: E402,F401  pylint: disable=unused-import


TOKEN_ID = "root@pam!phoenix"
TOKEN_SECRET = "0b7b1a2e-5c3d-4f5e-9a8b-7c6d5e4f3a2b"
PASSWORD = "s3cret-pass"
TEMPLATE = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"


class Api:
    """A small PVE API client over requests, verifying TLS with the simulator's CA."""

    def __init__(self, base: str, ca_file: str, headers: dict | None = None):
        self.base = base
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        self.session.verify = ca_file
        self.session.headers.update(headers or {})

    def call(self, method: str, path: str, **params):
        kwargs = {"params": params} if method in ("GET", "DELETE") else {"data": params}
        return self.session.request(method, self.base + path, timeout=30, **kwargs)

    def get(self, path, **params):
        return self.call("GET", path, **params)

    def post(self, path, **params):
        return self.call("POST", path, **params)

    def put(self, path, **params):
        return self.call("PUT", path, **params)

    def delete(self, path, **params):
        return self.call("DELETE", path, **params)

    def data(self, method: str, path: str, **params):
        response = self.call(method, path, **params)
        assert response.status_code == 200, (response.status_code, response.reason, response.text)
        return response.json()["data"]

    def wait(self, upid: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            status = self.data("GET", f"/nodes/pve/tasks/{upid}/status")
            if status["status"] == "stopped":
                return status
            assert time.monotonic() < deadline, f"task {upid} still running after {timeout:g} s: {status}"
            time.sleep(0.02)

    def wait_template(self, kind: str, vmid: int, timeout: float = 30.0) -> dict:
        """Poll a guest's config until it shows template: 1 (LXC conversion answers null, no task ID)."""
        deadline = time.monotonic() + timeout
        while True:
            config = self.data("GET", f"/nodes/pve/{kind}/{vmid}/config")
            if config.get("template") == 1:
                return config
            assert time.monotonic() < deadline, f"{kind} {vmid} not a template after {timeout:g} s: {config}"
            time.sleep(0.02)

    def run(self, method: str, path: str, **params) -> dict:
        """Call an asynchronous API and wait for its task; returns the task status."""
        return self.wait(self.data(method, path, **params))
