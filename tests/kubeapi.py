"""A loopback HTTP server that answers Longhorn list requests as the Kubernetes API server
does, for the Kubernetes source's tests (no API server can be installed here).

``GET /apis/longhorn.io/<version>/namespaces/<ns>/<plural>?limit=N&continue=T``: a
``<Kind>List`` with ``metadata.resourceVersion`` and, while more remain, an opaque
``metadata.continue`` token; failures are ``Status`` objects with the API server's
reasons (``Expired`` 410, ``Forbidden`` 403, ``NotFound`` 404, ``TooManyRequests`` 429
with ``Retry-After``, ``InternalError`` 500). A token expires (410) when the collection
changed after it was issued, as the API server's compaction does.

``?watch=true&resourceVersion=N``: a chunked stream of JSON lines, one watch event each
(ADDED, MODIFIED, DELETED; BOOKMARK when ``allowWatchBookmarks``), every change after
``N``, until ``timeoutSeconds`` or :meth:`FakeApi.end_watches`. A resourceVersion older
than the last :meth:`FakeApi.compact` gets what the API server sends: a 200 stream with
one ERROR event holding a 410 ``Expired`` Status (or, ``expire_as_status``, an HTTP 410);
:meth:`FakeApi.expire_watches` sends that ERROR event to the open streams.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import ssl
import threading
import time
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
        self.changed = threading.Condition(self.lock)
        # (resourceVersion, plural, event) of every change, for watches
        self.events: list[tuple[int, str, dict]] = []
        self.compacted = 0  # a watch from before this resourceVersion is 410 Gone
        self.expire_as_status = False
        self.watch_fail: dict[int, int] = {}  # n-th watch request -> HTTP status
        self.watches = 0
        self.url = ""
        self._expired = 0  # bumped: open streams get an ERROR 410 event
        self._ended = 0  # bumped: open streams end, as at timeoutSeconds

    def _emit(self, plural: str, kind: str, obj: dict) -> None:
        """(With the lock held.) A change: a new resourceVersion, an event, and tokens
        issued before now expire."""
        self.resource_version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.resource_version)
        self.events.append((self.resource_version, plural,
                            {"type": kind, "object": copy.deepcopy(obj)}))
        self.changed.notify_all()

    def change(self, plural: str, obj: dict, namespace: str = "longhorn-system") -> None:
        """Add an object (an ADDED event)."""
        with self.lock:
            self.objects.setdefault((namespace, plural), []).append(obj)
            self._emit(plural, "ADDED", obj)

    def modify(self, plural: str, name: str, update: object,
               namespace: str = "longhorn-system") -> None:
        """Change the object ``name`` with ``update(obj)`` (a MODIFIED event)."""
        with self.lock:
            [obj] = [o for o in self.objects[(namespace, plural)]
                     if o["metadata"]["name"] == name]
            update(obj)  # type: ignore[operator]
            self._emit(plural, "MODIFIED", obj)

    def delete(self, plural: str, name: str, namespace: str = "longhorn-system") -> None:
        """Remove the object ``name`` (a DELETED event with its last state)."""
        with self.lock:
            objs = self.objects[(namespace, plural)]
            [obj] = [o for o in objs if o["metadata"]["name"] == name]
            objs.remove(obj)
            self._emit(plural, "DELETED", obj)

    def bookmark(self, plural: str = "backups") -> int:
        """A BOOKMARK to the open watches (the resourceVersion moved on elsewhere)."""
        with self.lock:
            self.resource_version += 1
            rv = self.resource_version
            self.events.append((rv, plural, {"type": "BOOKMARK", "object": {
                "kind": KINDS[plural], "apiVersion": "longhorn.io/v1beta2",
                "metadata": {"resourceVersion": str(rv)}}}))
            self.changed.notify_all()
            return rv

    def compact(self) -> None:
        """Forget the changes so far: watches from before now are 410 Gone."""
        with self.lock:
            self.compacted = self.resource_version

    def expire_watches(self) -> None:
        """The open streams get an ERROR event with a 410 Status, then end."""
        with self.lock:
            self.compacted = self.resource_version
            self._expired += 1
            self.changed.notify_all()

    def end_watches(self) -> None:
        """The open streams end, as at their timeoutSeconds."""
        with self.lock:
            self._ended += 1
            self.changed.notify_all()

    def wait_for_watches(self, n: int, timeout_s: float = 10.0) -> None:
        """Until ``n`` watch requests have arrived."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while self.watches < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.watches} watch request(s), not {n}")
                self.changed.wait(left)

    def discovery(self, path: str) -> dict | None:
        """What the API server says of itself and of longhorn.io (what the client's
        DynamicClient reads before any list)."""
        group = {"name": "longhorn.io", "versions": [
            {"groupVersion": f"longhorn.io/{v}", "version": v} for v in self.versions],
            "preferredVersion": {"groupVersion": f"longhorn.io/{self.versions[0]}",
                                 "version": self.versions[0]}}
        if path == "/version":
            return {"major": "1", "minor": "31", "gitVersion": "v1.31.0"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/api/v1":
            return {"kind": "APIResourceList", "groupVersion": "v1", "resources": []}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]}
        for v in self.versions:
            if path == f"/apis/longhorn.io/{v}":
                return {"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": f"longhorn.io/{v}", "resources": [
                            {"name": plural, "singularName": kind.lower(), "namespaced": True,
                             "kind": kind, "verbs": ["get", "list", "watch"]}
                            for plural, kind in KINDS.items()]}
        return None

    def encode(self, body: dict) -> bytes:
        """An answer's bytes."""
        return json.dumps(body).encode()

    def authorized(self, headers: dict) -> bool:
        """A bearer token as the API server reads it (the scheme in any case: the client's
        in-cluster configuration sends ``bearer``)."""
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and token == self.token

    def watch(self, path: str, query: dict, headers: dict
              ) -> tuple[int, dict, dict] | object:
        """A watch request: an error answer, or an iterator of event lines."""
        m = _PATH.match(path)
        with self.lock:
            self.requests.append((path, json.dumps(query, sort_keys=True), dict(headers)))
            self.watches += 1
            n = self.watches
            marks = (self._expired, self._ended)  # (what happens from now on counts)
            self.changed.notify_all()
        if self.token and not self.authorized(headers):
            return 401, status(401, "Unauthorized"), {}
        if not m or m.group(1) not in self.versions:
            return 404, status(404, "the server could not find the requested resource"), {}
        plural = m.group(3)
        code = self.watch_fail.get(n)
        if code is not None:
            extra = {"Retry-After": "0"} if code == 429 else {}
            return code, status(code, f"injected {code} on watch request {n}"), extra
        if plural in self.forbidden:
            return 403, status(403, f'{plural}.longhorn.io is forbidden: User '
                               f'"system:serviceaccount:x:advisor" cannot watch resource '
                               f'"{plural}" in API group "longhorn.io"'), {}
        since = int((query.get("resourceVersion") or ["0"])[0] or 0)
        timeout = float((query.get("timeoutSeconds") or ["1800"])[0])
        bookmarks = (query.get("allowWatchBookmarks") or [""])[0] == "true"
        gone = status(410, f"too old resource version: {since} ({self.compacted})")
        if since < self.compacted and self.expire_as_status:
            return 410, gone, {}
        return self._stream(plural, since, timeout, bookmarks, gone, marks)

    def _stream(self, plural: str, since: int, timeout: float, bookmarks: bool,
                gone: dict, marks: tuple[int, int]) -> object:
        if since < self.compacted:
            yield {"type": "ERROR", "object": gone}
            return
        deadline = time.monotonic() + timeout
        pos = 0
        while True:
            with self.lock:
                while (pos == len(self.events) and marks == (self._expired, self._ended)
                       and time.monotonic() < deadline):
                    self.changed.wait(min(0.05, max(deadline - time.monotonic(), 0)))
                new, pos = self.events[pos:], len(self.events)
                now = (self._expired, self._ended)
            for rv, p, event in new:
                if rv > since and p == plural and (bookmarks or event["type"] != "BOOKMARK"):
                    yield event
            if now[0] != marks[0]:
                yield {"type": "ERROR", "object": status(
                    410, "The resourceVersion for the provided watch is too old.")}
                return
            if now[1] != marks[1] or time.monotonic() >= deadline:
                return

    def answer(self, path: str, query: dict, headers: dict) -> tuple[int, dict, dict]:
        m = _PATH.match(path)
        with self.lock:
            self.requests.append((path, json.dumps(query, sort_keys=True), dict(headers)))
        if self.token and not self.authorized(headers):
            return 401, status(401, "Unauthorized"), {}
        if not m:
            found = self.discovery(path)
            if found is not None:
                return 200, found, {}
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
def serve(api: FakeApi, tmp_path: Path, *, tls: tuple[Path, Path] | None = None
          ) -> Iterator[Path]:
    """Run the server on 127.0.0.1 and yield a kubeconfig for it (contexts ``prod`` and
    ``staging``, both this server; ``prod`` current). ``tls``: (certificate, key) to
    serve HTTPS with, as the API server does; ``api.url`` is where it listens."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # (chunked watch streams, as the API server sends)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if (query.get("watch") or [""])[0] in ("true", "1"):
                answer = api.watch(url.path, query, headers)
                if not isinstance(answer, tuple):
                    self.stream(answer)
                    return
                code, body, extra = answer
            else:
                code, body, extra = api.answer(url.path, query, headers)
            data = api.encode(body)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def stream(self, events: Iterator[dict]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for event in events:
                    line = json.dumps(event).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = api.url = (f"{'https' if tls else 'http'}://127.0.0.1:"
                     f"{server.server_address[1]}")
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
        api.end_watches()
        server.shutdown()
        server.server_close()
