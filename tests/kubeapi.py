"""A loopback HTTP server that answers Longhorn list requests as the Kubernetes API server
does, for the Kubernetes source's tests (no API server can be installed here).

``GET /apis/longhorn.io/<version>/namespaces/<ns>/<plural>?limit=N&continue=T``: a
``<Kind>List`` with ``metadata.resourceVersion`` and, while more remain, an opaque
``metadata.continue`` token; failures are ``Status`` objects with the API server's
reasons (``Expired`` 410, ``Forbidden`` 403, ``NotFound`` 404, ``TooManyRequests`` 429
with ``Retry-After``, ``InternalError`` 500). A token expires (410) when the collection
changed after it was issued, as the API server's compaction does.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

KINDS = {"backups": "Backup", "backupvolumes": "BackupVolume",
         "recurringjobs": "RecurringJob", "volumes": "Volume", "settings": "Setting",
         "backuptargets": "BackupTarget"}
_PATH = re.compile(r"^/apis/longhorn\.io/(v1beta[12])/namespaces/([^/]+)/([a-z]+)$")
_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Expired",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


def status(code: int, message: str) -> dict:
    """A ``Status`` object as the API server sends with an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": _REASONS.get(code, "Unknown"), "code": code}


class FakeApi:
    """The server's state: objects per (namespace, plural), the versions it serves, and
    failures to answer with (``fail[(plural, n)] = code``: the n-th request for
    ``plural``, counting from 1)."""

    def __init__(self, objects: dict[str, list[dict]], *, namespace: str = "longhorn-system",
                 versions: tuple[str, ...] = ("v1beta2", "v1beta1")):
        self.objects = {(namespace, k): list(v) for k, v in objects.items()}
        self.versions = versions
        self.fail: dict[tuple[str, int], int] = {}
        self.forbidden: set[str] = set()
        self.token: str | None = "secret-token"
        self.requests: list[tuple[str, str, dict]] = []
        self.resource_version = 1000
        self.on_page: dict[tuple[str, int], object] = {}  # (plural, n) -> callable(api)
        self._seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def change(self, plural: str, obj: dict, namespace: str = "longhorn-system") -> None:
        """Add an object: tokens issued before now expire."""
        with self.lock:
            self.objects.setdefault((namespace, plural), []).append(obj)
            self.resource_version += 1

    def answer(self, path: str, query: dict, headers: dict) -> tuple[int, dict, dict]:
        m = _PATH.match(path)
        with self.lock:
            self.requests.append((path, json.dumps(query, sort_keys=True), dict(headers)))
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return 401, status(401, "Unauthorized"), {}
        if not m:
            return 404, status(404, "the server could not find the requested resource"), {}
        version, namespace, plural = m.groups()
        with self.lock:
            n = self._seen[plural] = self._seen.get(plural, 0) + 1
        hook = self.on_page.get((plural, n))
        if hook is not None:
            hook(self)
        code = self.fail.get((plural, n))
        if code is not None:
            extra = {"Retry-After": "0"} if code == 429 else {}
            return code, status(code, f"injected {code} on request {n} for {plural}"), extra
        if version not in self.versions or plural not in KINDS:
            return 404, status(404, "the server could not find the requested resource"), {}
        if plural in self.forbidden:
            return 403, status(403, f'{plural}.longhorn.io is forbidden: User '
                               f'"system:serviceaccount:x:advisor" cannot list resource '
                               f'"{plural}" in API group "longhorn.io" in the namespace '
                               f'"{namespace}"'), {}
        with self.lock:
            items = self.objects.get((namespace, plural), [])
            rv = self.resource_version
        limit = int((query.get("limit") or ["0"])[0]) or len(items) or 1
        offset = 0
        token = (query.get("continue") or [None])[0]
        if token:
            issued_rv, offset = json.loads(base64.b64decode(token))
            if issued_rv != rv:
                return 410, status(410, "The provided continue parameter is too old to "
                                   "display a consistent list result. You can start a new "
                                   "list without the continue parameter."), {}
        page = items[offset:offset + limit]
        meta: dict = {"resourceVersion": str(rv)}
        if offset + limit < len(items):
            meta["continue"] = base64.b64encode(
                json.dumps([rv, offset + limit]).encode()).decode()
            meta["remainingItemCount"] = len(items) - offset - limit
        return 200, {"apiVersion": f"longhorn.io/{version}", "kind": f"{KINDS[plural]}List",
                     "metadata": meta,
                     "items": [{**o, "apiVersion": f"longhorn.io/{version}"} for o in page]
                     }, {}


@contextmanager
def serve(api: FakeApi, tmp_path: Path) -> Iterator[Path]:
    """Run the server on 127.0.0.1 and yield a kubeconfig for it (contexts ``prod`` and
    ``staging``, both this server; ``prod`` current)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            code, body, extra = api.answer(
                url.path, parse_qs(url.query), {k.lower(): v for k, v in self.headers.items()})
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "loop", "cluster": {"server": url}}],
        "users": [{"name": "advisor", "user": {"token": api.token or "none"}}],
        "contexts": [{"name": c, "context": {"cluster": "loop", "user": "advisor"}}
                     for c in ("prod", "staging")]}))
    try:
        yield kubeconfig
    finally:
        server.shutdown()
        server.server_close()
