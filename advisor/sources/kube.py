"""Backup history read from live clusters through the Kubernetes API (read-only).

Lists backups, backupvolumes, recurringjobs, volumes, settings and backuptargets of
``longhorn.io`` (``v1beta2``, else ``v1beta1``) in one namespace, through the
``kubernetes`` client with pagination (``limit`` / ``continue``) and the responses
decoded as raw JSON (the client's model deserialisation is far too slow for 100,000
objects). The lists are read as :mod:`advisor.sources.files` reads ``kubectl get -o
json``; each kubeconfig context is one cluster, tagged with the context's name.

Errors, as the API server gives them: a 410 Gone on an expired ``continue`` token lists
the resource again from the start; 429 and 5xx are retried with backoff (``Retry-After``
when given); 401 and 403 say which verbs and resources are missing; 404 means the
Longhorn CRDs are not installed (or at another version); time-outs are bounded and
reported. Nothing is ever written to a cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
import pandas as pd

from advisor.longhorn import NAMESPACE
from advisor.sources.base import LoadResult, retry_delay
from advisor.sources.files import load_document, no_cycle_collection

__all__ = ["GROUP", "RESOURCES", "VERSIONS", "KubeError", "KubeUnavailable", "ListStats",
           "Paging", "clients", "list_resource", "load_kube"]

GROUP = "longhorn.io"
VERSIONS = ("v1beta2", "v1beta1")
RESOURCES = ("backups", "backupvolumes", "recurringjobs", "volumes", "settings",
             "backuptargets")
PAGE = 500
"""Objects per page (``limit``)."""
RETRIES = 5
"""Attempts after the first for a page answered 429 or 5xx, or timing out."""
RELISTS = 3
"""Fresh lists after an expired ``continue`` token (410 Gone)."""
TIMEOUT_S = 60.0
"""Seconds a page may take."""


class KubeError(Exception):
    """A cluster could not be read as asked (what, where, and what to do)."""


class KubeUnavailable(KubeError):
    """The API server gave no usable answer in the attempts allowed (time-outs, lost
    connections, 429 or 5xx every time): worth trying again later, unlike a refusal."""


@dataclass
class ListStats:
    """What listing took: objects (and per resource), pages, fresh lists after a 410,
    retried pages, and the version each resource was read at."""

    objects: int = 0
    pages: int = 0
    relists: int = 0
    retries: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    listed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Paging:
    """How a resource is read: ``limit`` objects a page, each page within ``timeout_s``
    seconds; a page answered 429 or 5xx, or timing out, is asked again after waiting
    (``sleep``, seconds) up to :data:`RETRIES` times."""

    limit: int = PAGE
    timeout_s: float = TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep


def _page(api: object, version: str, plural: str, namespace: str, token: str | None,
          stats: ListStats, paging: Paging) -> dict:
    """One page as a dict, retrying 429, 5xx and time-outs (raises ApiException for
    the other statuses)."""
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError

    kw = {"limit": paging.limit, "_preload_content": False,
          "_request_timeout": paging.timeout_s}
    if token:
        kw["_continue"] = token
    attempt = 0
    while True:
        try:
            resp = CustomObjectsApi(api).list_namespaced_custom_object(
                GROUP, version, namespace, plural, **kw)
            return orjson.loads(resp.data)  # (a third of json's time for 100,000)
        except ApiException as e:
            if not (e.status == 429 or e.status >= 500) or attempt == RETRIES:
                raise
            delay = retry_delay(attempt, (e.headers or {}).get("Retry-After"))
        except HTTPError as e:  # a time-out, a refused or dropped connection
            if attempt == RETRIES:
                raise KubeUnavailable(f"{plural}.{GROUP}/{version} in {namespace}: no answer "
                                      f"after {RETRIES + 1} attempts of at most "
                                      f"{paging.timeout_s:g} s each ({type(e).__name__}: "
                                      f"{e})") from None
            delay = retry_delay(attempt, None)
        stats.retries += 1
        paging.sleep(delay)
        attempt += 1


def _status_message(e: object) -> str:
    try:
        return json.loads(e.body).get("message") or e.reason  # type: ignore[attr-defined]
    except (TypeError, ValueError, AttributeError):
        return str(getattr(e, "reason", "") or "")


def list_resource(api: object, plural: str, namespace: str = NAMESPACE, *,
                  paging: Paging = Paging(), stats: ListStats | None = None) -> dict:
    """Every object of ``plural``.longhorn.io in ``namespace``, as one List (``kind``,
    ``apiVersion``, ``items``, and the ``resourceVersion`` it was read at), read page by
    page (``paging``) through ``api`` (a ``kubernetes.client.ApiClient``) at the first
    version of :data:`VERSIONS` the server serves."""
    stats = stats if stats is not None else ListStats()
    with no_cycle_collection():  # (100,000 parsed objects: see files.py)
        return _list(api, plural, namespace, stats, paging)


def _list(api: object, plural: str, namespace: str, stats: ListStats,
          paging: Paging) -> dict:
    from kubernetes.client.rest import ApiException

    for version in VERSIONS:
        items: list = []
        token, relists = None, 0
        try:
            while True:
                try:
                    page = _page(api, version, plural, namespace, token, stats, paging)
                except ApiException as e:
                    if e.status == 410 and token and relists < RELISTS:
                        relists += 1
                        stats.relists += 1
                        items, token = [], None  # the token expired: list again
                        continue
                    raise
                stats.pages += 1
                items.extend(page.get("items") or [])
                meta = page.get("metadata") or {}
                token = meta.get("continue")
                if not token:
                    stats.objects += len(items)
                    stats.versions[plural] = version
                    stats.listed[plural] = len(items)
                    return {"apiVersion": page.get("apiVersion", f"{GROUP}/{version}"),
                            "kind": page.get("kind") or "List", "items": items,
                            "metadata": {"resourceVersion": meta.get("resourceVersion")}}
        except ApiException as e:
            where = f"{plural}.{GROUP}/{version} in namespace {namespace}"
            if e.status == 404:
                continue  # (not served at this version: try the next)
            if e.status == 0:  # (the client's way of saying: TLS failed, no HTTP answer)
                raise KubeError(f"{where}: {tls_failure(e.reason)}") from None
            if e.status == 401:
                raise KubeError(f"{where}: 401 Unauthorized: the credentials (the "
                                "kubeconfig's, or the pod's service account token) were "
                                f"refused ({_status_message(e)})") from None
            if e.status == 403:
                raise KubeError(f"{where}: 403 Forbidden: the advisor needs the verbs get "
                                f"and list on {plural}.{GROUP} in namespace {namespace} "
                                f"(and watch for advisor watch): {_status_message(e)}"
                                ) from None
            if e.status == 410:
                raise KubeError(f"{where}: 410 Gone {relists + 1} times in a row while "
                                "paging (the list changes faster than it can be read); "
                                "try a larger page") from None
            error = (KubeUnavailable if e.status == 429 or e.status >= 500 else KubeError)
            raise error(f"{where}: {e.status} {e.reason}: {_status_message(e)}") from None
    raise KubeError(f"{plural}.{GROUP} is served at none of {', '.join(VERSIONS)} "
                    f"(404 in namespace {namespace}): the Longhorn CRDs are not installed "
                    "in this cluster, or at another version")


def tls_failure(reason: object) -> str:
    """What to do when the TLS handshake with the API server failed."""
    text = str(reason or "").strip().replace("\n", " ")
    return (f"the TLS connection failed ({text}): the server's certificate must be signed "
            "by the kubeconfig's certificate-authority (in a pod: the service account's "
            "ca.crt)")


def _api_client(cfg: object) -> object:
    """A client of ``cfg`` (a ``kubernetes.client.Configuration``) without urllib3's own
    retries: retrying is :func:`_page`'s, which counts and reports it."""
    from kubernetes import client

    cfg.retries = False  # type: ignore[attr-defined]
    return client.ApiClient(cfg)


def clients(contexts: Sequence[str | None] = (None,), *, kubeconfig: str | None = None,
            in_cluster: bool = False, cluster: str | None = None
            ) -> list[tuple[str, object]]:
    """``(cluster name, kubernetes.client.ApiClient)`` for each kubeconfig context in
    ``contexts`` (None: the current one), named after the context (or ``cluster`` when
    there is one); ``in_cluster``: the cluster the advisor runs in, named ``cluster``."""
    from kubernetes import client, config

    if in_cluster:
        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException as e:
            raise KubeError(f"in-cluster configuration: {e} (is the advisor running in "
                            "a pod with a service account?)") from None
        return [(cluster or "default", _api_client(cfg))]
    try:
        _, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except config.ConfigException as e:
        raise KubeError(f"kubeconfig {kubeconfig or '(default)'}: {e}") from None
    out = []
    for ctx in contexts:
        name = ctx or current["name"]
        cfg = client.Configuration()
        try:
            config.load_kube_config(config_file=kubeconfig, context=name,
                                    client_configuration=cfg)
        except config.ConfigException as e:
            raise KubeError(f"kubeconfig context {name!r}: {e}") from None
        out.append((cluster if cluster and len(contexts) == 1 else name, _api_client(cfg)))
    return out


def load_kube(contexts: Sequence[str | None] = (None,), *,
              namespace: str = NAMESPACE, kubeconfig: str | None = None,
              in_cluster: bool = False, cluster: str | None = None,
              resources: Sequence[str] = RESOURCES, paging: Paging = Paging()
              ) -> tuple[LoadResult, dict[str, ListStats]]:
    """The frames of every cluster named by ``contexts`` (kubeconfig contexts, None: the
    current one; or, ``in_cluster``, the cluster the advisor runs in), each tagged with
    its context's name (or ``cluster``), and per cluster what listing took (each
    resource read as ``paging`` says)."""
    result: LoadResult | None = None
    stats: dict[str, ListStats] = {}
    for tag, api in clients(contexts, kubeconfig=kubeconfig, in_cluster=in_cluster,
                            cluster=cluster):
        st = stats[tag] = ListStats()
        now = pd.Timestamp.now(tz="UTC")
        for plural in resources:
            doc = list_resource(api, plural, namespace, paging=paging, stats=st)
            part = load_document(doc, source=f"kube:{tag}/{namespace}/{plural}",
                                 cluster=tag, collected_at=now)
            result = part if result is None else result.merge(part)
    assert result is not None
    return result, stats
