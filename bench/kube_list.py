"""Benchmark: listing 100,000 Backups from a loopback server that answers as the
Kubernetes API server does (tests/kubeapi.py), in pages of 500.

Times, each in a fresh process (medians of --repeat runs, peak memory from ``os.wait4``):

- ``advisor``: :func:`advisor.sources.kube.list_resource` (raw JSON through the
  ``kubernetes`` client, ``_preload_content=False``);
- ``client``: the client's default path (``list_namespaced_custom_object`` with its
  own decoding). For a custom resource the client has no model class: it decodes the
  JSON and hands back the dicts (``api_client.__deserialize`` with ``object``), so it is
  not the typed-model decoding that is slow for core kinds;
- ``dynamic``: the client's model path for custom resources, ``kubernetes.dynamic``'s
  ``DynamicClient`` (discovery, then each page turned into ``ResourceInstance`` /
  ``ResourceField`` objects, which are kept);
- ``http``: a bare HTTP fetch of the same pages (``http.client``) and ``json.loads``.

Each keeps every object, as a collection must. Each is timed from after its imports and
client set-up (the DynamicClient's discovery included in the set-up: to its favour) to
the last page kept; the set-up is printed apart. The server sends every page already
encoded (a warm-up list encodes them), as the API server answers from its watch cache,
so the figures are the client side's; the child's CPU time over the listing is given
too (the server runs in this process, not the child).

Goals (issue 6): at least 5x faster than the client's model deserialisation, at most 2x
a bare fetch. Both client paths are reported: ``CustomObjectsApi``'s, which builds no
models, and ``DynamicClient``'s, which does.

    .venv/bin/python bench/kube_list.py [--backups 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, sys, time, http.client
from urllib.parse import urlparse
mode, kubeconfig, url = sys.argv[1:4]
started = time.perf_counter()
if mode != "http":  # (imports and the client's set-up: timed apart from the listing)
    from kubernetes import client, config, dynamic
    from advisor.sources.kube import list_resource
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    cfg.retries = False
    api = client.ApiClient(cfg)
    if mode == "dynamic":
        res = dynamic.DynamicClient(api).resources.get(api_version="longhorn.io/v1beta2",
                                                       kind="Backup")
t, cpu = time.perf_counter(), time.process_time()
if mode == "http":
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    token, items = None, []
    while True:
        q = "?limit=500" + (f"&continue={token}" if token else "")
        conn.request("GET", "/apis/longhorn.io/v1beta2/namespaces/longhorn-system/backups" + q,
                     headers={"Authorization": "Bearer secret-token",
                              "Accept": "application/json"})
        page = json.loads(conn.getresponse().read())
        items.extend(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            break
    n = len(items)
else:
    if mode == "advisor":
        n = len(list_resource(api, "backups")["items"])
    elif mode == "dynamic":
        token, items = None, []
        while True:
            kw = {"limit": 500, **({"_continue": token} if token else {})}
            page = res.get(namespace="longhorn-system", **kw)
            items.extend(page.items)  # (the models, as the client builds them)
            token = page.metadata["continue"]
            if not token:
                break
        n = len(items)
    else:
        token, items = None, []
        while True:
            kw = {"limit": 500, **({"_continue": token} if token else {})}
            page = client.CustomObjectsApi(api).list_namespaced_custom_object(
                "longhorn.io", "v1beta2", "longhorn-system", "backups", **kw)
            items.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                break
        n = len(items)
print(json.dumps({"n": n, "s": time.perf_counter() - t, "cpu_s": time.process_time() - cpu,
                  "setup_s": t - started}))
"""


def _pre_encoded() -> type:
    from tests.kubeapi import FakeApi

    class PreEncoded(FakeApi):
        """Answers each page from bytes encoded once (as the API server's watch cache)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._answers: dict = {}
            self._bytes: dict[int, bytes] = {}

        def answer(self, path: str, query: dict, headers: dict):
            key = (path, json.dumps(query, sort_keys=True))
            if key not in self._answers:
                self._answers[key] = super().answer(path, query, headers)
            return self._answers[key]

        def encode(self, body: dict) -> bytes:
            if id(body) not in self._bytes:  # (bodies live in _answers: ids stay theirs)
                self._bytes[id(body)] = super().encode(body)
            return self._bytes[id(body)]

    return PreEncoded


def run(mode: str, kubeconfig: Path, url: str) -> dict:
    p = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(kubeconfig), url],
                         stdout=subprocess.PIPE, cwd=REPO)
    _, status, ru = os.wait4(p.pid, 0)
    out = json.loads(p.stdout.read())
    p.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{mode} failed")
    return {**out, "peak_mb": ru.ru_maxrss / 1024}


def main() -> None:
    from advisor.sources import synthetic as syn
    from tests.kubeapi import serve

    PreEncoded = _pre_encoded()

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backups", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    t = time.perf_counter()
    backups = [syn.backup_cr(f"backup-{i:06d}", f"pvc-{i % 2000:04d}", state="Completed",
                             created=t0 + timedelta(minutes=i),
                             started=t0 + timedelta(minutes=i, seconds=5),
                             finished=t0 + timedelta(minutes=i + 3), job="hourly",
                             size_bytes=syn.GIB, volume_size_bytes=20 * syn.GIB)
               for i in range(args.backups)]
    api = PreEncoded({"backups": backups})
    print(f"{len(backups):,} Backups made in {time.perf_counter() - t:.1f} s "
          f"({len(json.dumps(backups[0]))} bytes of JSON each)")
    with tempfile.TemporaryDirectory() as tmp, serve(api, Path(tmp)) as kubeconfig:
        url = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        run("http", kubeconfig, url)  # (the warm-up: every page encoded once)
        med, cpu = {}, {}
        for mode in ("advisor", "client", "dynamic", "http"):
            runs = [run(mode, kubeconfig, url) for _ in range(args.repeat)]
            assert all(r["n"] == args.backups for r in runs), runs
            med[mode] = statistics.median(r["s"] for r in runs)
            cpu[mode] = statistics.median(r["cpu_s"] for r in runs)
            peak = statistics.median(r["peak_mb"] for r in runs)
            walls = ", ".join(f"{r['s']:.2f}" for r in runs)
            setup = statistics.median(r["setup_s"] for r in runs)
            print(f"{mode:>8}: median {med[mode]:.2f} s (runs: {walls}), CPU "
                  f"{cpu[mode]:.2f} s, peak {peak:.0f} MB; imports and set-up {setup:.2f} s")
    for what, fig in (("wall time", med), ("CPU time", cpu)):
        print(f"{what}: advisor vs the client's models (DynamicClient) "
              f"{fig['dynamic'] / fig['advisor']:.2f}x faster (goal >= 5x); vs "
              f"CustomObjectsApi's decoding (no models: dicts) "
              f"{fig['client'] / fig['advisor']:.2f}x faster; vs a bare fetch + json.loads "
              f"{fig['advisor'] / fig['http']:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
