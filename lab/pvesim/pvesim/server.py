"""HTTPS server: authentication, schema validation, dispatch; the control interface (/_sim/) is in
control_api.py.

Use from Python::

    from pvesim.server import start_server
    srv = start_server(state_dir=tmp, tokens=["root@pam!phoenix=SECRET"], control=True)
    srv.url, srv.ca_file, srv.port
    srv.stop()
"""

from __future__ import annotations

import copy
import json
import os
import socket
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

from . import access, cluster, firewall, guests, images
from .auth import AuthError, Authenticator, parse_password_spec, parse_token_spec
from .backend import Backend
from .control_api import ControlApi
from .errors import ApiError
from .routes import ROUTES, Request
from .schema import ApiSchema, ParamError, guest_kind, validate_params, validate_reply
from .state import Sim
from .tls import ensure_tls

__all__ = ["SimServer", "start_server", "make_server"]

# Importing these modules registers their routes in ROUTES (the @route decorator).
ROUTE_MODULES = (access, cluster, firewall, guests, images)

API_PREFIX = "/api2/json"
SECRET_WORDS = ("password", "secret", "token", "otp")
FLOCK_WAIT = 10.0


def mask_params(params: dict) -> dict:
    masked = {}
    for key, value in params.items():
        if any(word in key.lower() for word in SECRET_WORDS) and key.lower() != "csrfpreventiontoken":
            masked[key] = "********"
        else:
            masked[key] = value
    return masked


def _decode_form(data: str) -> dict:
    params: dict[str, str] = {}
    for key, value in parse_qsl(data, keep_blank_values=True):
        params[key] = f"{params[key]}\0{value}" if key in params else value
    return params


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = -1  # one write per response; handle_one_request flushes

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self):  # noqa: N802
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def do_PUT(self):  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self):  # noqa: N802
        self._handle("DELETE")

    # -- responses ----------------------------------------------------------------------

    def _send(self, status: int, reason: str | None, body: bytes, content_type: str = "application/json;charset=UTF-8",
              headers: dict | None = None):
        reason = (reason or "").split("\n")[0] or None
        self.send_response(status, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload, reason: str | None = None, headers: dict | None = None):
        self._send(status, reason, json.dumps(payload).encode("utf-8"), headers=headers)

    def _send_error(self, exc: ApiError):
        payload = {"data": None, "message": exc.message}
        if exc.errors:
            payload["errors"] = exc.errors
        self._send_json(exc.status, payload, reason=exc.message)

    # -- request ------------------------------------------------------------------------

    def _read_params(self, query: str) -> dict:
        params: dict = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/json":
                try:
                    body = json.loads(raw.decode("utf-8") or "{}")
                except ValueError as exc:
                    raise ApiError(400, f"unable to parse JSON body - {exc}") from None
                if not isinstance(body, dict):
                    raise ApiError(400, "JSON body must be an object")
                params.update({k: v for k, v in body.items() if v is not None})
            else:
                params.update(_decode_form(raw.decode("utf-8")))
        params.update(_decode_form(query))
        params.pop("_dc", None)
        return params

    def _handle(self, method: str):
        server: SimServer = self.server.owner
        parts = urlsplit(self.path)
        path = parts.path
        if path.startswith("/_sim/") or path == "/_sim":
            if not server.control:
                self._send_json(404, {"data": None}, reason="Not Found")
                return
            server.handle_control(self, method, path, parts.query)
            return
        if not path.startswith(API_PREFIX + "/") and path != API_PREFIX:
            self._send(501, "no such uri", b"", content_type="text/plain")
            return
        rel = path[len(API_PREFIX):] or "/"
        entry = {"time": time.time(), "method": method, "path": rel, "params": {}, "status": None, "user": None}
        logged = []

        def log_once():
            # The simulator's own request log (no PVE counterpart) takes the entry before the answer leaves, so that
            # a client holding its answer finds its request in the log; the entry is the same dict afterwards.
            if not logged:
                logged.append(True)
                server.log_request(entry)

        try:
            params = self._read_params(parts.query)
            entry["params"] = mask_params(params)
            status, payload, headers = server.dispatch(method, rel, params, self.headers, entry)
            if server.reply_after_write_fault(method, rel, entry):
                # pveproxy gives pvedaemon 30 s (pve-http-server src/PVE/APIServer/AnyEvent.pm proxy_request); when
                # that runs out, AnyEvent::HTTP's 596 reaches the client although the write ran
                log_once()
                self._send(596, "Connection timed out", b"")
                return
            entry["status"] = status
            log_once()
            self._send_json(status, payload, headers=headers)
        except AuthError as exc:
            entry["status"] = 401
            log_once()
            self._send(401, str(exc), b"")
        except ApiError as exc:
            entry["status"] = exc.status
            log_once()
            self._send_error(exc)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:  # an unexpected failure answers 500 like PVE does
            entry["status"] = 500
            if server.verbose:
                traceback.print_exc()
            log_once()
            self._send_error(ApiError(500, f"{exc.__class__.__name__}: {exc}"))
        finally:
            log_once()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, owner: SimServer, ssl_context, verbose=False):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        self.ssl_context = ssl_context
        self.verbose = verbose
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class SimServer(ControlApi):
    """A running pvesim: `url`, `api_url`, `ca_file`, `port`, `sim`; `stop()` ends it."""

    def __init__(self, sim: Sim, auth: Authenticator, listen: str, tls: dict | None, control: bool, verbose: bool):
        self.sim = sim
        self.auth = auth
        self.control = control
        self.verbose = verbose
        self.tls = tls
        host, _sep, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls["cert_file"], tls["key_file"])
        self.httpd = _HTTPServer((host, int(port or 8006)), self, context, verbose=verbose)
        self.host = host
        self.port = self.httpd.server_address[1]
        scheme = "https" if tls else "http"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{self.port}"
        self.api_url = self.url + API_PREFIX
        self.ca_file = tls["ca_file"] if tls else None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def serve_forever(self):
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self.serve_forever, name="pvesim", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(5)
        self.sim.save()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- API ----------------------------------------------------------------------------

    def log_request(self, entry: dict):
        with self.sim.lock:
            self.sim.request_log.append(entry)
            if len(self.sim.request_log) > 10000:
                del self.sim.request_log[:1000]

    def reply_after_write_fault(self, method: str, rel: str, entry: dict) -> bool:
        """Whether a write that has just run is answered with the injected `after_write` fault (596)."""
        with self.sim.lock:
            spec = self.sim.faults.take_after_write(method, rel)
        if spec is None:
            return False
        entry["status"] = 596
        entry["fault"] = "after_write"
        return True

    def dispatch(self, method: str, rel: str, params: dict, headers, entry: dict):
        sim = self.sim
        faults = sim.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        if faults.error_rate and faults.rng.random() < faults.error_rate:
            raise ApiError(int(faults.error_status or 500), faults.error_message)
        who = self.auth.authenticate(method, rel, headers)
        entry["user"] = who.get("tokenid") or who.get("userid")
        not_implemented = ApiError(501, f"Method '{method} {rel}' not implemented")
        resolved = sim.schema.resolve(rel)
        if resolved is None:
            raise not_implemented
        template, info, path_params = resolved
        if method not in info or (method, template) not in ROUTES:
            raise not_implemented
        entry["template"] = template
        for key, value in path_params.items():
            if key in params and str(params[key]) != value:
                raise ApiError(400, "Parameter verification failed.",
                               {key: "duplicate parameter (already defined in URI) with conflicting values!"})
            params[key] = value
        if sim.strict:
            try:
                validate_params(params, info[method].get("parameters") or {}, guest_kind(template))
            except ParamError as exc:
                raise ApiError(400, "Parameter verification failed.", exc.errors) from None
        node = params.get("node")
        if node is not None and node not in sim.nodes:
            raise ApiError(500, f"hostname lookup '{node}' failed - failed to get address info for: {node}: "
                                "Name or service not known")
        if method != "GET":
            self._wait_for_file_locks(params)
        req = Request(method=method, template=template, path=rel, params=params, user=who.get("userid"),
                      tokenid=who.get("tokenid"), extra={"auth": self.auth})
        with sim.lock, sim.on_node(node):
            data = ROUTES[(method, template)](sim, req)
            if method != "GET":
                sim.save()
            returns = info[method].get("returns") if sim.strict else None
            reply = copy.deepcopy(data) if returns is not None else None
        if returns is not None:
            self._check_reply(method, template, reply, returns)
        headers_out = {}
        if req.extra.get("set_cookie"):
            cookie = quote(req.extra["set_cookie"], safe="")
            headers_out["Set-Cookie"] = f"PVEAuthCookie={cookie}; path=/; secure; SameSite=Lax"
        return 200, {"data": data}, headers_out

    def _check_reply(self, method: str, template: str, data, returns: dict):
        """Strict mode: a reply that breaks the method's `returns` schema is pvesim's own bug; answer 500."""
        # as pve-common RESTHandler.pm handle() does with result verification on ("Result verification failed")
        errors = validate_reply(data, returns, guest_kind(template))
        if not errors:
            return
        detail = "; ".join(f"{key}: {str(text).strip()}" for key, text in sorted(errors.items()))
        message = f"pvesim reply does not match the API schema: {method} {template}: {detail}"
        print(message, file=sys.stderr, flush=True)
        raise ApiError(500, message, errors)

    def _wait_for_file_locks(self, params: dict):
        """Writes wait while a start/stop/resize task holds the guest's file lock, as PVE's flock does."""
        vmids = {int(params[k]) for k in ("vmid", "newid") if str(params.get(k, "")).isdigit()}
        deadline = time.time() + FLOCK_WAIT
        for vmid in vmids:
            for task in self.sim.tasks.running_for(vmid):
                if task.flock and not task.done.wait(max(0.0, deadline - time.time())):
                    kind = self.sim.guest_kind(vmid) or "lxc"
                    where = (f"/run/lock/lxc/pve-config-{vmid}.lock" if kind == "lxc"
                             else f"/var/lock/qemu-server/lock-{vmid}.conf")
                    raise ApiError(500, f"can't lock file '{where}' - got timeout")


def _as_token_dict(tokens) -> dict[str, str]:
    if not tokens:
        return {}
    if isinstance(tokens, dict):
        return dict(tokens)
    return dict(parse_token_spec(spec) for spec in tokens)


def _as_password_dict(passwords) -> dict[str, str]:
    if not passwords:
        return {}
    if isinstance(passwords, dict):
        return dict(passwords)
    if isinstance(passwords, str):
        passwords = [passwords]
    return dict(parse_password_spec(spec) for spec in passwords)


def make_server(
    state_dir,
    listen: str = "127.0.0.1:8006",
    tls_dir=None,
    tokens=None,
    passwords=None,
    node: str = "pve",
    task_seconds: float = 0.2,
    apidoc=None,
    nodes: list[str] | None = None,
    strict: bool = True,
    status_delay: float | None = None,
    control: bool = False,
    backend: Backend | None = None,
    tls: bool = True,
    verbose: bool = False,
    download_ca: str | None = None,
    acls=None,
) -> SimServer:
    """Build a SimServer without starting it (see start_server).

    `download_ca`: a CA bundle download-url trusts besides the system store (default $PVESIM_DOWNLOAD_CA).
    `acls`: privileges per user or token, 'AUTHID:PATH:PRIV,PRIV[:0]' each (pvesim/access.py)."""
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    schema = ApiSchema.load(apidoc)
    download_ca = download_ca or os.environ.get("PVESIM_DOWNLOAD_CA") or None
    if download_ca and not os.path.isfile(download_ca):
        raise ValueError(f"download CA bundle '{download_ca}' is not a file")
    sim = Sim(state_dir, schema, node=node, nodes=nodes, task_seconds=task_seconds, backend=backend, strict=strict,
              status_delay=status_delay, download_ca=download_ca)
    auth = Authenticator(sim.ticket_secret, _as_token_dict(tokens), _as_password_dict(passwords), acls)
    tls_paths = None
    if tls:
        host = listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
        extra = tuple(h for h in (host, *sim.nodes) if h not in ("0.0.0.0", "::", ""))
        tls_paths = ensure_tls(tls_dir or state_dir / "tls", hostnames=extra)
    return SimServer(sim, auth, listen, tls_paths, control, verbose)


def start_server(state_dir, listen: str = "127.0.0.1:0", **kwargs) -> SimServer:
    """Start pvesim in a background thread (port 0 picks a free port)."""
    return make_server(state_dir, listen=listen, **kwargs).start()
