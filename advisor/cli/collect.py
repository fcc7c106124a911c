"""``advisor collect``: read backup history (files, the API server, Prometheus, the
sample) into the history store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from advisor.cli.options import (
    KUBERNETES,
    ClusterTagOpt,
    FromFileOpt,
    InClusterOpt,
    KubeconfigOpt,
    NamespaceOpt,
    SampleOpt,
    StoreOpt,
    fail,
    print_load,
)
from advisor.inputs import model_inputs
from advisor.longhorn import NAMESPACE
from advisor.sample import load_sample
from advisor.sources.base import LoadResult, empty_result
from advisor.sources.files import InputError, load_files
from advisor.store import HistoryStore, StoreError

__all__ = ["collect"]

MAX_KEPT_PROBLEMS = 1000
"""Problems of one collect kept in its collection's manifest (the count is kept whole)."""
PROMETHEUS = "Prometheus"
"""The help panel of the options of ``--prometheus``."""


def _prom(*names: str, help: str, **kw: object) -> typer.models.OptionInfo:
    return typer.Option(*names, help=f"With --prometheus: {help}", show_default=False,
                        rich_help_panel=PROMETHEUS, **kw)  # type: ignore[arg-type]


PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="More files or folders, as with --from-file.", show_default=False)]
KubeOpt = Annotated[bool, typer.Option(
    "--kube", help="Read the clusters of the kubeconfig's contexts (read-only), each "
    "tagged with its context's name.", rich_help_panel=KUBERNETES)]
ContextsOpt = Annotated[list[str] | None, typer.Option(
    "--context", help="With --kube: this kubeconfig context (repeatable; default the "
    "current one).", show_default=False, rich_help_panel=KUBERNETES)]
PrometheusOpt = Annotated[str | None, typer.Option(
    "--prometheus", metavar="URL", help="Read backups from the samples of Longhorn's "
    "backup metrics in this Prometheus (its base URL, e.g. http://prometheus:9090), "
    "tagged --cluster.", show_default=False, rich_help_panel=PROMETHEUS)]
SinceOpt = Annotated[str | None, _prom(
    "--since", help="from this long ago (30d, 12h, 90m) or this RFC 3339 time.  "
    "[default: 30d]")]
StepOpt = Annotated[str | None, _prom(
    "--step", help="the sampling interval (30s, 1m); times are known within max(step, "
    "scrape interval).  [default: 30s]")]
SelectorOpt = Annotated[str | None, _prom(
    "--selector", help="label matchers added to the queries, e.g. 'cluster=\"prod\"' "
    "when one Prometheus holds several clusters.")]
TokenFileOpt = Annotated[str | None, _prom(
    "--bearer-token-file", help="a file holding a bearer token (else "
    "$ADVISOR_PROMETHEUS_TOKEN).")]
BasicAuthOpt = Annotated[str | None, _prom(
    "--basic-auth", metavar="USER", help="basic auth as USER, with the password in "
    "--basic-auth-password-file or $ADVISOR_PROMETHEUS_PASSWORD.")]
PasswordFileOpt = Annotated[str | None, typer.Option(
    "--basic-auth-password-file", help="With --basic-auth: a file holding the password.",
    show_default=False, rich_help_panel=PROMETHEUS)]
CaFileOpt = Annotated[str | None, _prom(
    "--ca-file", help="CA certificates (PEM) to verify the server with.")]
ClientCertOpt = Annotated[str | None, _prom(
    "--client-cert", help="a client certificate (PEM).")]
ClientKeyOpt = Annotated[str | None, typer.Option(
    "--client-key", help="With --client-cert: its private key (PEM).", show_default=False,
    rich_help_panel=PROMETHEUS)]
InsecureOpt = Annotated[bool, typer.Option(
    "--insecure-skip-tls-verify", help="With --prometheus: do not verify the server's "
    "certificate.", rich_help_panel=PROMETHEUS)]
AllProblemsOpt = Annotated[bool, typer.Option(
    "--all-problems", help="Print every warning, not the first 200.")]
FitOpt = Annotated[bool, typer.Option(
    "--fit/--no-fit", help="After a new collection, fit the backup durations and keep the "
    "fits in the store, so the next recommend or check need not.")]


def collect(
    paths: PathsArg = None,
    from_file: FromFileOpt = None,
    sample: SampleOpt = False,
    kube: KubeOpt = False,
    context: ContextsOpt = None,
    namespace: NamespaceOpt = NAMESPACE,
    kubeconfig: KubeconfigOpt = None,
    in_cluster: InClusterOpt = False,
    prometheus: PrometheusOpt = None,
    since: SinceOpt = None,
    step: StepOpt = None,
    selector: SelectorOpt = None,
    bearer_token_file: TokenFileOpt = None,
    basic_auth: BasicAuthOpt = None,
    basic_auth_password_file: PasswordFileOpt = None,
    ca_file: CaFileOpt = None,
    client_cert: ClientCertOpt = None,
    client_key: ClientKeyOpt = None,
    insecure_skip_tls_verify: InsecureOpt = False,
    cluster: ClusterTagOpt = "default",
    store: StoreOpt = None,
    all_problems: AllProblemsOpt = False,
    fit: FitOpt = True,
) -> None:
    """Read backup history into the local history store."""
    inputs = [*(from_file or []), *(paths or [])]
    if not inputs and not sample and not kube and not prometheus:
        raise fail("nothing to collect: give --from-file PATH..., --kube, --prometheus URL "
                   "or --sample", 2)
    if (context or in_cluster) and not kube:
        raise fail("--context and --in-cluster go with --kube", 2)
    prom_options = {"--since": since, "--step": step, "--selector": selector,
                    "--bearer-token-file": bearer_token_file, "--basic-auth": basic_auth,
                    "--basic-auth-password-file": basic_auth_password_file,
                    "--ca-file": ca_file, "--client-cert": client_cert,
                    "--client-key": client_key,
                    "--insecure-skip-tls-verify": insecure_skip_tls_verify}
    if not prometheus and any(prom_options.values()):
        raise fail(f"{', '.join(k for k, v in prom_options.items() if v)} go with "
                   "--prometheus", 2)
    try:
        result = load_files(inputs, cluster=cluster) if inputs else empty_result()
    except InputError as e:
        raise fail(str(e), 2) from None
    if sample:  # tagged cluster "sample", so it never mixes with a real cluster's history
        result = result.merge(load_sample())
    if kube:
        result = result.merge(_from_kube(context, namespace=namespace, kubeconfig=kubeconfig,
                                         in_cluster=in_cluster, cluster=cluster))
    if prometheus:
        result = result.merge(_from_prometheus(
            prometheus, cluster=cluster, since=since or "30d", step=step or "30s",
            selector=selector or "", bearer_token_file=bearer_token_file,
            basic_auth=basic_auth, basic_auth_password_file=basic_auth_password_file,
            ca_file=ca_file, client_cert=client_cert, client_key=client_key,
            insecure_skip_tls_verify=insecure_skip_tls_verify))
    print_load(result, all_problems)
    if result.usable_rows == 0:
        raise fail("no usable record in the input; nothing stored", 2)
    hs, collection_id = _append(result, store)
    if fit and collection_id:
        _keep_fits(hs)


def _from_kube(context: list[str] | None, *, namespace: str, kubeconfig: str | None,
               in_cluster: bool, cluster: str) -> LoadResult:
    """``collect --kube``: list the Longhorn objects of each context, saying what each
    cluster gave; exit 2 on any error (nothing is stored)."""
    from advisor.sources.kube import KubeError, load_kube

    try:
        live, stats = load_kube(context or [None], namespace=namespace,
                                kubeconfig=kubeconfig, in_cluster=in_cluster,
                                cluster=cluster if in_cluster else None)
    except KubeError as e:
        raise fail(str(e), 2) from None
    for name, st in stats.items():
        print(f"cluster {name}: {st.objects:,} objects in {st.pages} page(s)"
              + (f", {st.retries} page(s) retried" if st.retries else "")
              + (f", {st.relists} list(s) started again (410 Gone)" if st.relists
                 else "") + f" from namespace {namespace}")
        for plural, n in st.listed.items():
            print(f"  {plural + '.longhorn.io/' + st.versions[plural]:<34} {n:>8,}")
    return live


def _append(result: LoadResult, store: Path | None) -> tuple[HistoryStore, str | None]:
    """Append the usable rows to the store and say what changed: (the store, the new
    collection's id, None when nothing was new); exit 1 when the store cannot be used."""
    try:
        hs = HistoryStore(store)
        # what was skipped or kept with a warning goes with the rows, for the report's
        # data quality (the store keeps only usable rows)
        appended = hs.append(result.frames, meta={"problems": [
            {"severity": p.severity, "text": str(p)} for p in result.problems[:MAX_KEPT_PROBLEMS]],
            "problems_total": len(result.problems)} if result.problems else None)
    except StoreError as e:
        raise fail(str(e), 1) from None
    for name, c in appended.counts.items():
        print(f"{name}: {c.added} added, {c.updated} updated, {c.unchanged} unchanged")
    where = (f"collection {appended.collection_id}" if appended.collection_id
             else "nothing new")
    print(f"store: {hs.path} ({where}); {len(result.warnings)} warning(s), "
          f"{len(result.skipped)} skipped")
    return hs, appended.collection_id


def _keep_fits(hs: HistoryStore) -> None:
    """``--fit``: fit the durations of the new history and keep the fits in the store."""
    t = time.perf_counter()
    try:
        kept = model_inputs(hs)
    except StoreError as e:
        raise fail(str(e), 1) from None
    print(f"duration fits of {len(kept.fits.table):,} volume/mode(s) "
          + ("kept in the store" if kept.kept or kept.reused else
             "not kept (another advisor was writing the store)")
          + f" for the next recommend and check ({time.perf_counter() - t:.1f} s)")


def _from_prometheus(url: str, *, cluster: str, since: str, step: str, selector: str,
                     bearer_token_file: str | None, basic_auth: str | None,
                     basic_auth_password_file: str | None, **tls: object) -> LoadResult:
    """``collect --prometheus``: the secrets from their files or the environment, the
    window, the load, and what it took; exit 2 on any error (nothing is stored)."""
    from advisor.sources import prometheus as prom

    try:
        start = prom.parse_since(since)
    except ValueError as e:
        raise fail(f"--since: {e}", 2) from None
    try:
        prom.parse_duration(step)
    except ValueError as e:
        raise fail(f"--step: {e}", 2) from None
    if basic_auth and bearer_token_file:
        raise fail("give one of --bearer-token-file and --basic-auth", 2)
    if tls.get("client_key") and not tls.get("client_cert"):
        raise fail("--client-key goes with --client-cert", 2)
    try:
        # an explicit --basic-auth wins over a token in the environment
        token = None if basic_auth else prom.read_secret(bearer_token_file, prom.TOKEN_ENV)
        auth = None
        if basic_auth:
            password = prom.read_secret(basic_auth_password_file, prom.PASSWORD_ENV)
            if password is None:
                raise fail("--basic-auth needs a password: --basic-auth-password-file "
                           f"or ${prom.PASSWORD_ENV}", 2)
            auth = (basic_auth, password)
        connection = prom.Connection(bearer_token=token, basic_auth=auth,
                                     **tls)  # type: ignore[arg-type]
        live, st = prom.load_prometheus(url, since=start, step=step, cluster=cluster,
                                        selector=selector, connection=connection)
    except (prom.PrometheusError, ValueError) as e:  # (ValueError: --since in the future)
        raise fail(str(e), 2) from None
    print(f"prometheus {st.url}: {st.backups:,} backup(s) from {st.series:,} series, "
          f"{st.samples:,} samples in {st.queries} queries"
          + (f" ({st.retries} retried)" if st.retries else "")
          + f", {st.start:%Y-%m-%d %H:%M} to {st.end:%Y-%m-%d %H:%M} UTC every {step}")
    if st.series == 0:
        print(f"  no {prom.STATE_METRIC} series in that window: does this Prometheus scrape "
              "longhorn-manager (its ServiceMonitor, port 9500)?")
    return live
