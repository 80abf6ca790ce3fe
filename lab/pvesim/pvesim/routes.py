"""The route table: (method, path template) -> handler(sim, request)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ROUTES", "Request", "route", "implemented_paths"]

ROUTES: dict[tuple[str, str], object] = {}


@dataclass
class Request:
    method: str
    template: str
    path: str
    params: dict
    user: str | None = None
    tokenid: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "qemu" if "/qemu" in self.template else "lxc"

    @property
    def authid(self) -> str:
        return self.tokenid or self.user or "root@pam"

    def get(self, key, default=None):
        value = self.params.get(key)
        return default if value is None else value

    def flag(self, key, default=False) -> bool:
        value = self.params.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value) == "1"

    def int(self, key, default=None):
        value = self.params.get(key)
        return default if value is None else int(value)


def route(method: str, *templates: str):
    def register(func):
        for template in templates:
            ROUTES[(method, template)] = func
        return func

    return register


def guest_paths(suffix: str) -> tuple[str, str]:
    """'/status/start' -> the lxc and qemu templates."""
    return (f"/nodes/{{node}}/lxc/{{vmid}}{suffix}", f"/nodes/{{node}}/qemu/{{vmid}}{suffix}")


def implemented_paths() -> dict[str, set[str]]:
    """{template: {methods}} for every route pvesim implements (used to vendor the schema)."""
    from . import access, cluster, firewall, guests, images  # noqa: F401 - registers the routes

    result: dict[str, set[str]] = {}
    for method, template in ROUTES:
        result.setdefault(template, set()).add(method)
    return result
