"""``advisor watch``: record every state transition of the Backups of one cluster."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from advisor.cli.options import (
    KUBERNETES,
    ClusterTagOpt,
    InClusterOpt,
    KubeconfigOpt,
    NamespaceOpt,
    StoreOpt,
    fail,
)
from advisor.longhorn import NAMESPACE
from advisor.store import HistoryStore, StoreError

__all__ = ["watch"]

ContextOpt = Annotated[str | None, typer.Option(
    "--context", help="The kubeconfig context to watch (default the current one); one "
    "cluster per watch.", show_default=False, rich_help_panel=KUBERNETES)]
FlushEveryOpt = Annotated[float, typer.Option(
    "--flush-every", min=1.0, help="Write to the store at least this often (seconds), "
    "and when stopped.")]


def watch(
    context: ContextOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    cluster: ClusterTagOpt = "default",
    store: StoreOpt = None,
    flush_every: FlushEveryOpt = 60.0,
) -> None:
    """Watch Backups and record every state transition, with its time, into the store
    (Pending, InProgress and Deleting spans; deletion durations). Runs until SIGTERM or
    Ctrl-C, then writes what is pending. Read-only."""
    import signal
    import threading

    from advisor.sources.kube import KubeError, clients
    from advisor.sources.watch import BackupWatch, Cadence

    try:
        [(name, api)] = clients([context], kubeconfig=kubeconfig, in_cluster=in_cluster,
                                cluster=cluster if in_cluster else None)
        hs = HistoryStore(store)
    except KubeError as e:
        raise fail(str(e), 2) from None
    except StoreError as e:
        raise fail(str(e), 1) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"watching backups.longhorn.io in {namespace} of cluster {name} into {hs.path} "
          f"(written at least every {flush_every:g} s; SIGTERM stops)", flush=True)
    watch = BackupWatch(api, hs, cluster=name, namespace=namespace,
                        cadence=Cadence(flush_every_s=flush_every),
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    try:
        stats = watch.run(stop)
    except KubeError as e:
        raise fail(f"{e} (what was seen before is in the store)", 2) from None
    except StoreError as e:
        raise fail(str(e), 1) from None
    print(f"stopped: {sum(stats.events.values())} event(s), {stats.rows_written} rows "
          f"written in {stats.writes} write(s), {stats.lists} list(s), "
          f"{stats.reconnects} reconnection(s)"
          + (f", {stats.unseen_deletions} Backup(s) removed while not watched (their "
             "deletion's end is unknown)" if stats.unseen_deletions else "")
          + (f", {stats.problems} record(s) skipped" if stats.problems else ""))
