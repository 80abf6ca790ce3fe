"""Client for pvesim's test-only control interface (`--control`, under /_sim/, no auth)."""

from __future__ import annotations

import json
import ssl
import urllib.request

__all__ = ["Control"]


class Control:
    """`Control(url, ca_file=None)`; url is the server's base URL (https://127.0.0.1:PORT)."""

    def __init__(self, url: str, ca_file: str | None = None, timeout: float = 10.0):
        self.url = url.rstrip("/")
        if self.url.endswith("/api2/json"):
            self.url = self.url[: -len("/api2/json")]
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        if self.context is None and self.url.startswith("https:"):
            self.context = ssl._create_unverified_context()  # noqa: S323 - test helper without a CA file

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
            return json.loads(response.read().decode() or "{}").get("data")

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """The request log (secrets masked), optionally filtered by method and path prefix."""
        entries = self._call("GET", "/_sim/requests")
        return [
            e for e in entries
            if (method is None or e["method"] == method) and (path is None or e["path"].startswith(path))
        ]

    def clear_requests(self) -> None:
        self._call("DELETE", "/_sim/requests")

    def faults(self) -> dict:
        return self._call("GET", "/_sim/faults")

    def set_faults(self, **faults) -> dict:
        """Set faults: latency_ms, error_rate, error_status, error_message, seed,
        fail_task={vmid, type, message, times}, warn_task={vmid, type, warnings, times},
        unknown_status={vmid, seconds} (/cluster/resources shows the guest as `unknown`), lock={vmid, reason},
        after_write={method, path, times} (the write runs, then the reply is 596 Connection timed out)."""
        return self._call("POST", "/_sim/faults", faults)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sim/faults")

    def state(self) -> dict:
        return self._call("GET", "/_sim/state")
