"""A real Prometheus for the tests: history backfilled with promtool, then served on a
loopback port; certificates for its TLS; and a loopback proxy in front of it.

Debian's ``prometheus`` package gives ``/usr/bin/prometheus`` and ``/usr/bin/promtool``
(``make deps-test`` installs it). Without them the tests are skipped, except under
``CI=true``, where that is a failure.

Backfilled blocks carry no staleness markers, so a series that ends would go on being
answered for the 5-minute lookback; the server runs with a lookback just under the
scrape interval, which ends a series one interval after its last sample, as the
staleness markers of a live scrape do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.conftest import missing_dependency

PROMETHEUS = Path(os.environ.get("ADVISOR_TEST_PROMETHEUS", "/usr/bin/prometheus"))
PROMTOOL = Path(os.environ.get("ADVISOR_TEST_PROMTOOL", "/usr/bin/promtool"))
SCRAPE_S = 30
"""The scrape interval the backfilled history pretends to."""

Series = tuple[str, dict[str, str], list[tuple[int, float]]]
"""A metric name, its labels and its (time in seconds, value) samples."""


def require_binaries() -> None:
    """Skip the calling test (fail it under CI=true) when Prometheus is not installed."""
    missing = [str(p) for p in (PROMETHEUS, PROMTOOL) if not os.access(p, os.X_OK)]
    if missing:
        missing_dependency(f"{' and '.join(missing)} missing (`make deps-test` installs "
                           "Debian's prometheus package)")


def openmetrics(series: list[Series]) -> str:
    """The series as an OpenMetrics text (families grouped, timestamps in seconds)."""
    by_metric: dict[str, list[Series]] = {}
    for s in series:
        by_metric.setdefault(s[0], []).append(s)
    lines = []
    for metric, group in by_metric.items():
        lines.append(f"# TYPE {metric} gauge")
        for _, labels, samples in group:
            text = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lines += [f"{metric}{{{text}}} {v} {t}" for t, v in samples]
    return "\n".join([*lines, "# EOF", ""])


def backfill(series: list[Series], data_dir: Path) -> None:
    """Write the series as TSDB blocks into ``data_dir`` (before a server opens it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / f"{data_dir.name}.om"
    source.write_text(openmetrics(series))
    proc = subprocess.run([str(PROMTOOL), "tsdb", "create-blocks-from", "openmetrics", "-q",
                           str(source), str(data_dir)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"promtool failed: {proc.stdout}{proc.stderr}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running Prometheus: its base URL and process."""

    url: str
    proc: subprocess.Popen
    log: Path


@contextlib.contextmanager
def prometheus(data_dir: Path, *, web_config: Path | None = None,
               ready_kw: dict | None = None) -> Iterator[Server]:
    """Prometheus on a free loopback port over ``data_dir`` (no scrape job, retention
    100 years so backfilled blocks are kept), stopped on exit."""
    port = free_port()
    config = data_dir.parent / f"{data_dir.name}.yml"
    config.write_text(f"global:\n  scrape_interval: {SCRAPE_S}s\n")
    log = data_dir.parent / f"{data_dir.name}.log"
    args = [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}",
            f"--query.lookback-delta={SCRAPE_S - 1}s"]
    if web_config:
        args.append(f"--web.config.file={web_config}")
    scheme = "https" if web_config else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=2, **(ready_kw or {})).ok:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prometheus did not become ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield Server(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def copy_data(src: Path, dst: Path) -> Path:
    """A copy of backfilled blocks for a second server (one TSDB, one process)."""
    shutil.copytree(src, dst)
    return dst


# --- TLS and basic auth --------------------------------------------------------------

@dataclass
class Pki:
    """A CA and, signed by it, a server certificate for 127.0.0.1 and a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(folder: Path) -> Pki:
    """Write a fresh CA, server and client certificates (PEM) into ``folder``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(name: str, key, issuer_name, issuer_key, *, ca: bool = False,
             server: bool = False) -> x509.Certificate:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                       name)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(hours=1))
             .not_valid_after(now + dt.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
        if not ca:
            usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key or key, hashes.SHA256())

    def write(name: str, key, crt) -> tuple[Path, Path]:
        kp, cp = folder / f"{name}.key", folder / f"{name}.crt"
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        cp.write_bytes(crt.public_bytes(serialization.Encoding.PEM))
        return cp, kp

    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_crt = cert("advisor test CA", ca_key, None, None, ca=True)
    ca_path, _ = write("ca", ca_key, ca_crt)
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("server", "client")}
    server = write("server", keys["server"], cert("127.0.0.1", keys["server"],
                                                  ca_crt.subject, ca_key, server=True))
    client = write("client", keys["client"], cert("advisor", keys["client"], ca_crt.subject,
                                                  ca_key))
    return Pki(ca_path, server[0], server[1], client[0], client[1])


def web_config(path: Path, pki: Pki, users: dict[str, str]) -> Path:
    """Prometheus' --web.config.file: TLS with client certificates required, and basic
    auth for ``users`` (name: password; stored as bcrypt hashes, as Prometheus wants)."""
    import bcrypt

    hashed = {u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()
              for u, p in users.items()}
    path.write_text(json.dumps({  # (JSON is YAML)
        "tls_server_config": {"cert_file": str(pki.server_cert),
                              "key_file": str(pki.server_key),
                              "client_auth_type": "RequireAndVerifyClientCert",
                              "client_ca_file": str(pki.ca)},
        "basic_auth_users": hashed}))
    return path


# --- a proxy in front of the real server ---------------------------------------------

@dataclass
class Proxy:
    """A loopback HTTP proxy to ``upstream`` that checks a bearer token (as an auth proxy
    in front of Prometheus does), records each request's path and headers, and answers
    the next requests as ``script`` says: "pass", an HTTP status, "html" or "hang"."""

    upstream: str
    token: str | None = None
    script: list[object] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""


@contextlib.contextmanager
def proxy(p: Proxy) -> Iterator[Proxy]:
    """Serve ``p`` on a free loopback port until the block ends."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            p.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            action = p.script.pop(0) if p.script else "pass"
            if p.token and self.headers.get("Authorization") != f"Bearer {p.token}":
                return self.send(401, b"Unauthorized\n", "text/plain")
            if action == "hang":
                release.wait(30)
                return None
            if action == "html":
                return self.send(200, b"<html><body>Sign in</body></html>", "text/html")
            if isinstance(action, int):
                body = {"status": "error", "errorType": "server_error",
                        "error": f"injected {action}"}
                return self.send(action, json.dumps(body).encode())
            upstream = requests.get(p.upstream + self.path, timeout=30)
            return self.send(upstream.status_code, upstream.content,
                             upstream.headers.get("Content-Type", "application/json"))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    p.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield p
    finally:
        release.set()
        server.shutdown()
        server.server_close()
