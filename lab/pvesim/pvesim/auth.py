"""API tokens, login tickets and CSRF prevention tokens, as PVE's API checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import unquote

__all__ = ["AuthError", "Authenticator", "extract_auth_value"]

TICKET_LIFETIME = 2 * 3600


class AuthError(Exception):
    """401: the message is the HTTP reason phrase, the body stays empty (PVE does so)."""


def extract_auth_value(header: str | None, key: str) -> str | None:
    """Find `KEY=value` or `KEY value` in a Cookie/Authorization header (PVE accepts both)."""
    if not header:
        return None
    match = re.search(r"(?:^|\s)" + re.escape(key) + r"(?:=| )([^;]*)", header)
    if not match or not match.group(1):
        return None
    return unquote(match.group(1))


def parse_token_spec(spec: str) -> tuple[str, str]:
    """'user@realm!tokenid=SECRET' -> ('user@realm!tokenid', 'SECRET')."""
    tokenid, sep, secret = spec.partition("=")
    if not sep or "!" not in tokenid or "@" not in tokenid or not secret:
        raise ValueError(f"token must look like 'user@realm!tokenid=SECRET', got {spec!r}")
    return tokenid, secret


def parse_password_spec(spec: str) -> tuple[str, str]:
    """'user@realm:PASSWORD' -> ('user@realm', 'PASSWORD')."""
    user, sep, password = spec.partition(":")
    if not sep or "@" not in user or not password:
        raise ValueError(f"password must look like 'user@realm:PASSWORD', got {spec!r}")
    return user, password


class Authenticator:
    def __init__(self, secret: bytes, tokens: dict[str, str] | None = None, passwords: dict[str, str] | None = None,
                 acls=None):
        from .access import Acl

        self.secret = secret
        self.tokens = dict(tokens or {})
        self.passwords = dict(passwords or {})
        # who holds which privileges where (`GET /access/permissions`; pvesim/access.py)
        self.acl = acls if isinstance(acls, Acl) else Acl(acls)

    # -- password login -------------------------------------------------------------

    def check_password(self, username: str, password: str) -> bool:
        expected = self.passwords.get(username)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    def _sign(self, data: str) -> str:
        mac = hmac.new(self.secret, data.encode(), hashlib.sha256).digest()
        return base64.b64encode(mac).decode().rstrip("=")

    def create_ticket(self, username: str, now: float | None = None) -> str:
        stamp = f"{int(now or time.time()):08X}"
        plain = f"PVE:{username}:{stamp}"
        return f"{plain}::{self._sign(plain)}"

    def verify_ticket(self, ticket: str) -> str:
        match = re.fullmatch(r"(PVE:([^:]+):([0-9A-F]{8}))::(.+)", ticket or "")
        if not match:
            raise AuthError("authentication failure")
        plain, username, stamp, sig = match.groups()
        if not hmac.compare_digest(self._sign(plain), sig):
            raise AuthError("authentication failure")
        age = time.time() - int(stamp, 16)
        if age < -300 or age > TICKET_LIFETIME:
            raise AuthError("authentication failure")
        if username not in self.passwords:
            raise AuthError("authentication failure")
        return username

    def create_csrf_token(self, username: str, now: float | None = None) -> str:
        stamp = f"{int(now or time.time()):08X}"
        return f"{stamp}:{self._sign(stamp + ':' + username)}"

    def verify_csrf_token(self, username: str, token: str | None) -> None:
        match = re.fullmatch(r"([0-9A-F]{8}):(\S+)", token or "")
        if not match:
            raise AuthError("Permission denied - invalid csrf token")
        stamp, sig = match.groups()
        age = time.time() - int(stamp, 16)
        if age < -300 or age > TICKET_LIFETIME or not hmac.compare_digest(self._sign(stamp + ":" + username), sig):
            raise AuthError("Permission denied - invalid csrf token")

    # -- request authentication -----------------------------------------------------

    def authenticate(self, method: str, rel_path: str, headers) -> dict:
        """Return {'userid', 'tokenid'?} or raise AuthError (401) as PVE's auth handler would."""
        if rel_path == "/access/ticket" and method in ("GET", "POST"):
            return {"userid": None}
        cookie = headers.get("Cookie")
        authorization = headers.get("Authorization")
        ticket = extract_auth_value(cookie, "PVEAuthCookie") or extract_auth_value(authorization, "PVEAuthCookie")
        api_token = None if ticket else extract_auth_value(authorization, "PVEAPIToken")
        if api_token:
            tokenid, sep, secret = api_token.partition("=")
            expected = self.tokens.get(tokenid)
            if not sep or expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
                raise AuthError("Authentication failed!")
            return {"userid": tokenid.split("!", 1)[0], "tokenid": tokenid}
        if not ticket:
            raise AuthError("No ticket")
        try:
            username = self.verify_ticket(ticket)
        except AuthError:
            raise AuthError("Authentication failed!") from None
        if method != "GET":
            self.verify_csrf_token(username, headers.get("CSRFPreventionToken"))
        return {"userid": username}
