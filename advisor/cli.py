"""The ``advisor`` command: a thin layer over the public API.

Exit codes: 0 done (warnings are counted in the output), 1 the store could not be used
(busy, newer version, not a store), 2 invalid input with nothing usable.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from advisor import __version__
from advisor.advice import Settings, analyse, gate
from advisor.cron import CronError
from advisor.history import summarize
from advisor.inputs import model_inputs
from advisor.longhorn import LATEST, NAMESPACE, behaviour
from advisor.model.durations import (
    DurationFits,
    fit_durations,
)
from advisor.model.observed import OBSERVED_BACKUP_COLUMNS
from advisor.model.recommend import job_labels_and_parameters, kubectl_patch, recurring_job_yaml
from advisor.model.risk import (
    default_window,
)
from advisor.model.scenario import ScenarioError, format_text, load_scenario, run_scenario
from advisor.model.scenario import summarize as summarize_scenario
from advisor.sample import load_sample
from advisor.schedules import check
from advisor.sources.base import LoadResult, empty_result
from advisor.sources.files import InputError, load_files
from advisor.store import HistoryStore, StoreError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  pretty_exceptions_show_locals=False,
                  help="How Longhorn backup schedules collide on the backupstore lock, "
                       "volume by volume, and what schedule avoids it. Read-only.")

StoreOpt = Annotated[Path | None, typer.Option(
    "--store", help="History store folder (default: $ADVISOR_STORE, else "
    "$XDG_DATA_HOME/longhorn-backup-advisor).", show_default=False)]
MAX_WARNINGS_SHOWN = 200
MAX_KEPT_PROBLEMS = 1000
"""Problems of one collect kept in its collection's manifest (the count is kept whole)."""


def _fail(message: str, code: int) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        print(f"advisor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Longhorn backup advisor."""


def _print_load(result: LoadResult, all_problems: bool) -> None:
    # lists from the API server were printed per cluster as they were read; what came
    # from files (and the sample) is said here, with the records of every source
    listed = any(f.startswith("kube:") for f in result.files)
    paths = [f for f in result.files if not f.startswith("kube:") and f != "sample"]
    read = ([f"{len(paths)} file(s)"] if paths else []) + (
        ["the sample fleet"] if "sample" in result.files else [])
    if read:
        print(f"read {' and '.join(read)}"
              + ("; records of every source:" if listed else ""))
        for kind, n in sorted(result.read.items()):
            print(f"  {kind:<14} {n:>8}")
    skipped, warnings = result.skipped, result.warnings
    if skipped:
        print(f"skipped {len(skipped)} record(s):")
        for p in skipped:
            print(f"  {p}")
    if warnings:
        shown = warnings if all_problems else warnings[:MAX_WARNINGS_SHOWN]
        print(f"{len(warnings)} warning(s) (records kept, field left empty or copy dropped):")
        for p in shown:
            print(f"  {p}")
        if len(shown) < len(warnings):
            print(f"  ... {len(warnings) - len(shown)} more (--all-problems shows them)")


@app.command()
def collect(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="More files or folders, as with --from-file.", show_default=False)] = None,
    from_file: Annotated[list[Path] | None, typer.Option(
        "--from-file", "-f", help="kubectl get -o json/yaml output, GitOps manifests, a "
        "CSV of backup history, a folder of them, or - for stdin. Repeatable.",
        show_default=False)] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Collect the sample fleet (made by the simulator; cluster "
        "'sample').")] = False,
    kube: Annotated[bool, typer.Option(
        "--kube", help="Read the clusters of the kubeconfig's contexts (read-only), each "
        "tagged with its context's name.")] = False,
    context: Annotated[list[str] | None, typer.Option(
        "--context", help="With --kube: this kubeconfig context (repeatable; default "
        "the current one).", show_default=False)] = None,
    namespace: Annotated[str, typer.Option(
        "--namespace", help="With --kube: Longhorn's namespace.")] = NAMESPACE,
    kubeconfig: Annotated[str | None, typer.Option(
        "--kubeconfig", help="With --kube: the kubeconfig (default $KUBECONFIG, else "
        "~/.kube/config).", show_default=False)] = None,
    in_cluster: Annotated[bool, typer.Option(
        "--in-cluster", help="With --kube: the cluster the advisor runs in (its service "
        "account), tagged --cluster.")] = False,
    prometheus: Annotated[str | None, typer.Option(
        "--prometheus", metavar="URL", help="Read backups from the samples of Longhorn's "
        "backup metrics in this Prometheus (its base URL, e.g. http://prometheus:9090), "
        "tagged --cluster.", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="With --prometheus: from this long ago (30d, 12h, 90m) or this "
        "RFC 3339 time.  [default: 30d]", show_default=False)] = None,
    step: Annotated[str | None, typer.Option(
        "--step", help="With --prometheus: the sampling interval (30s, 1m); times are "
        "known within max(step, scrape interval).  [default: 30s]",
        show_default=False)] = None,
    selector: Annotated[str | None, typer.Option(
        "--selector", help="With --prometheus: label matchers added to the queries, e.g. "
        "'cluster=\"prod\"' when one Prometheus holds several clusters.",
        show_default=False)] = None,
    bearer_token_file: Annotated[str | None, typer.Option(
        "--bearer-token-file", help="With --prometheus: a file holding a bearer token "
        "(else $ADVISOR_PROMETHEUS_TOKEN).", show_default=False)] = None,
    basic_auth: Annotated[str | None, typer.Option(
        "--basic-auth", metavar="USER", help="With --prometheus: basic auth as USER, with "
        "the password in --basic-auth-password-file or $ADVISOR_PROMETHEUS_PASSWORD.",
        show_default=False)] = None,
    basic_auth_password_file: Annotated[str | None, typer.Option(
        "--basic-auth-password-file", help="With --basic-auth: a file holding the "
        "password.", show_default=False)] = None,
    ca_file: Annotated[str | None, typer.Option(
        "--ca-file", help="With --prometheus: CA certificates (PEM) to verify the server "
        "with.", show_default=False)] = None,
    client_cert: Annotated[str | None, typer.Option(
        "--client-cert", help="With --prometheus: a client certificate (PEM).",
        show_default=False)] = None,
    client_key: Annotated[str | None, typer.Option(
        "--client-key", help="With --client-cert: its private key (PEM).",
        show_default=False)] = None,
    insecure_skip_tls_verify: Annotated[bool, typer.Option(
        "--insecure-skip-tls-verify", help="With --prometheus: do not verify the server's "
        "certificate.")] = False,
    cluster: Annotated[str, typer.Option(
        "--cluster", help="Name to tag these records with.")] = "default",
    store: StoreOpt = None,
    all_problems: Annotated[bool, typer.Option(
        "--all-problems", help="Print every warning, not the first 200.")] = False,
    fit: Annotated[bool, typer.Option(
        "--fit/--no-fit", help="After a new collection, fit the backup durations and keep "
        "the fits in the store, so the next recommend or check need not.")] = True,
) -> None:
    """Read backup history into the local history store."""
    inputs = [*(from_file or []), *(paths or [])]
    if not inputs and not sample and not kube and not prometheus:
        raise _fail("nothing to collect: give --from-file PATH..., --kube, --prometheus URL "
                    "or --sample", 2)
    if (context or in_cluster) and not kube:
        raise _fail("--context and --in-cluster go with --kube", 2)
    prom_options = {"--since": since, "--step": step, "--selector": selector,
                    "--bearer-token-file": bearer_token_file, "--basic-auth": basic_auth,
                    "--basic-auth-password-file": basic_auth_password_file,
                    "--ca-file": ca_file, "--client-cert": client_cert,
                    "--client-key": client_key,
                    "--insecure-skip-tls-verify": insecure_skip_tls_verify}
    if not prometheus and any(prom_options.values()):
        raise _fail(f"{', '.join(k for k, v in prom_options.items() if v)} go with "
                    "--prometheus", 2)
    try:
        result = load_files(inputs, cluster=cluster) if inputs else empty_result()
    except InputError as e:
        raise _fail(str(e), 2) from None
    if sample:  # tagged cluster "sample", so it never mixes with a real cluster's history
        result = result.merge(load_sample())
    if kube:
        from advisor.sources.kube import KubeError, load_kube

        try:
            live, stats = load_kube(context or [None], namespace=namespace,
                                    kubeconfig=kubeconfig, in_cluster=in_cluster,
                                    cluster=cluster if in_cluster else None)
        except KubeError as e:
            raise _fail(str(e), 2) from None
        for name, st in stats.items():
            print(f"cluster {name}: {st.objects:,} objects in {st.pages} page(s)"
                  + (f", {st.retries} page(s) retried" if st.retries else "")
                  + (f", {st.relists} list(s) started again (410 Gone)" if st.relists
                     else "") + f" from namespace {namespace}")
            for plural, n in st.listed.items():
                print(f"  {plural + '.longhorn.io/' + st.versions[plural]:<34} {n:>8,}")
        result = result.merge(live)
    if prometheus:
        result = result.merge(_from_prometheus(
            prometheus, cluster=cluster, since=since or "30d", step=step or "30s",
            selector=selector or "", bearer_token_file=bearer_token_file,
            basic_auth=basic_auth, basic_auth_password_file=basic_auth_password_file,
            ca_file=ca_file, client_cert=client_cert, client_key=client_key,
            insecure_skip_tls_verify=insecure_skip_tls_verify))
    _print_load(result, all_problems)
    if result.usable_rows == 0:
        raise _fail("no usable record in the input; nothing stored", 2)
    try:
        hs = HistoryStore(store)
        # what was skipped or kept with a warning goes with the rows, for the report's
        # data quality (the store keeps only usable rows)
        appended = hs.append(result.frames, meta={"problems": [
            {"severity": p.severity, "text": str(p)} for p in result.problems[:MAX_KEPT_PROBLEMS]],
            "problems_total": len(result.problems)} if result.problems else None)
    except StoreError as e:
        raise _fail(str(e), 1) from None
    for name, c in appended.counts.items():
        print(f"{name}: {c.added} added, {c.updated} updated, {c.unchanged} unchanged")
    where = (f"collection {appended.collection_id}" if appended.collection_id
             else "nothing new")
    print(f"store: {hs.path} ({where}); {len(result.warnings)} warning(s), "
          f"{len(result.skipped)} skipped")
    if fit and appended.collection_id:
        t = time.perf_counter()
        try:
            kept = model_inputs(hs)
        except StoreError as e:
            raise _fail(str(e), 1) from None
        print(f"duration fits of {len(kept.fits.table):,} volume/mode(s) "
              + ("kept in the store" if kept.kept or kept.reused else
                 "not kept (another advisor was writing the store)")
              + f" for the next recommend and check ({time.perf_counter() - t:.1f} s)")


@app.command("watch")
def watch_command(
    context: Annotated[str | None, typer.Option(
        "--context", help="The kubeconfig context to watch (default the current one); "
        "one cluster per watch.", show_default=False)] = None,
    namespace: Annotated[str, typer.Option(
        "--namespace", help="Longhorn's namespace.")] = NAMESPACE,
    kubeconfig: Annotated[str | None, typer.Option(
        "--kubeconfig", help="The kubeconfig (default $KUBECONFIG, else ~/.kube/config).",
        show_default=False)] = None,
    in_cluster: Annotated[bool, typer.Option(
        "--in-cluster", help="Watch the cluster the advisor runs in (its service "
        "account), tagged --cluster.")] = False,
    cluster: Annotated[str, typer.Option(
        "--cluster", help="With --in-cluster: the name to tag records with.")] = "default",
    store: StoreOpt = None,
    flush_every: Annotated[float, typer.Option(
        "--flush-every", min=1.0, help="Write to the store at least this often (seconds), "
        "and when stopped.")] = 60.0,
) -> None:
    """Watch Backups and record every state transition, with its time, into the store
    (Pending, InProgress and Deleting spans; deletion durations). Runs until SIGTERM or
    Ctrl-C, then writes what is pending. Read-only."""
    import signal
    import threading

    from advisor.sources.kube import KubeError, clients
    from advisor.sources.watch import BackupWatch

    try:
        [(name, api)] = clients([context], kubeconfig=kubeconfig, in_cluster=in_cluster,
                                cluster=cluster if in_cluster else None)
        hs = HistoryStore(store)
    except KubeError as e:
        raise _fail(str(e), 2) from None
    except StoreError as e:
        raise _fail(str(e), 1) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"watching backups.longhorn.io in {namespace} of cluster {name} into {hs.path} "
          f"(written at least every {flush_every:g} s; SIGTERM stops)", flush=True)
    watch = BackupWatch(api, hs, cluster=name, namespace=namespace,
                        flush_every_s=flush_every,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
    try:
        stats = watch.run(stop)
    except KubeError as e:
        raise _fail(f"{e} (what was seen before is in the store)", 2) from None
    except StoreError as e:
        raise _fail(str(e), 1) from None
    print(f"stopped: {sum(stats.events.values())} event(s), {stats.rows_written} rows "
          f"written in {stats.writes} write(s), {stats.lists} list(s), "
          f"{stats.reconnects} reconnection(s)"
          + (f", {stats.unseen_deletions} Backup(s) removed while not watched (their "
             "deletion's end is unknown)" if stats.unseen_deletions else "")
          + (f", {stats.problems} record(s) skipped" if stats.problems else ""))


def _from_prometheus(url: str, *, cluster: str, since: str, step: str, selector: str,
                     bearer_token_file: str | None, basic_auth: str | None,
                     basic_auth_password_file: str | None, **tls: object) -> LoadResult:
    """``collect --prometheus``: the secrets from their files or the environment, the
    window, the load, and what it took; exit 2 on any error (nothing is stored)."""
    from advisor.sources import prometheus as prom

    try:
        start = prom.parse_since(since)
    except ValueError as e:
        raise _fail(f"--since: {e}", 2) from None
    try:
        prom.parse_duration(step)
    except ValueError as e:
        raise _fail(f"--step: {e}", 2) from None
    if basic_auth and bearer_token_file:
        raise _fail("give one of --bearer-token-file and --basic-auth", 2)
    if tls.get("client_key") and not tls.get("client_cert"):
        raise _fail("--client-key goes with --client-cert", 2)
    try:
        # an explicit --basic-auth wins over a token in the environment
        token = None if basic_auth else prom.read_secret(bearer_token_file, prom.TOKEN_ENV)
        auth = None
        if basic_auth:
            password = prom.read_secret(basic_auth_password_file, prom.PASSWORD_ENV)
            if password is None:
                raise _fail("--basic-auth needs a password: --basic-auth-password-file "
                            f"or ${prom.PASSWORD_ENV}", 2)
            auth = (basic_auth, password)
        live, st = prom.load_prometheus(url, since=start, step=step, cluster=cluster,
                                        selector=selector, bearer_token=token,
                                        basic_auth=auth, **tls)  # type: ignore[arg-type]
    except (prom.PrometheusError, ValueError) as e:  # (ValueError: --since in the future)
        raise _fail(str(e), 2) from None
    print(f"prometheus {st.url}: {st.backups:,} backup(s) from {st.series:,} series, "
          f"{st.samples:,} samples in {st.queries} queries"
          + (f" ({st.retries} retried)" if st.retries else "")
          + f", {st.start:%Y-%m-%d %H:%M} to {st.end:%Y-%m-%d %H:%M} UTC every {step}")
    if st.series == 0:
        print(f"  no {prom.STATE_METRIC} series in that window: does this Prometheus scrape "
              "longhorn-manager (its ServiceMonitor, port 9500)?")
    return live


@app.command()
def history(
    store: StoreOpt = None,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="table or json.")] = "table",
) -> None:
    """Summarise the history store: clusters, volumes, jobs, backups, conflicts."""
    if output not in ("table", "json"):
        raise _fail(f"--output must be table or json, not {output!r}", 2)
    try:
        hs = HistoryStore(store)
        frames = {name: hs.read(name) for name in ("backups", "jobs", "volumes")}
        observations = hs.observations()
    except StoreError as e:
        raise _fail(str(e), 1) from None
    summary = summarize(frames, observations)
    if output == "json":
        print(json.dumps({"store": str(hs.path), **summary.to_dict()}, indent=2))
    else:
        print(f"store: {hs.path}")
        print(summary)


@app.command("sample")
def sample_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write into.")] = Path(
        "sample"),
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Seed of the simulation (default: the bundled sample's).",
        show_default=False)] = None,
) -> None:
    """Write the sample fleet (kubectl JSON) and its ground truth (events, runs, skips)."""
    from advisor import sample

    paths = sample.write_sample(out, sample.SEED if seed is None else seed)
    for what, path in paths.items():
        print(f"{what:8} {path}")
    print(f"collect it with: advisor collect --from-file {paths['fleet']}")


@app.command("cron")
def cron_command(
    expr: Annotated[str, typer.Argument(help="The schedule, e.g. '0 */2 * * *' (quote it).")],
    from_: Annotated[str | None, typer.Option(
        "--from", help="Fire times after this time (RFC 3339; default now, UTC).",
        show_default=False)] = None,
    n: Annotated[int, typer.Option("-n", help="How many fire times.", min=0)] = 5,
    tz: Annotated[str | None, typer.Option(
        "--tz", help="Evaluation time zone (IANA name or +HH:MM). Longhorn sets none, so "
        "the controller's zone applies: usually UTC.", show_default=False)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """When a RecurringJob schedule really fires, read as Longhorn and Kubernetes do."""
    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json, not {output!r}", 2)
    try:
        result = check(expr, from_, n, tz)
    except CronError as e:  # an unknown --tz
        raise _fail(str(e), 2) from None
    except ValueError as e:
        raise _fail(f"--from {from_!r} is not a time: {e}", 2) from None
    if output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        def yes(ok: bool) -> str:
            return "accepts" if ok else "rejects"

        print(f"schedule:    {expr}")
        print(f"valid:       {'yes' if result.valid else 'no'} (Longhorn {yes(result.longhorn)}, "
              f"Kubernetes {yes(result.kubernetes)})")
        if result.error:
            print(f"error:       {result.error}")
        else:
            print(f"description: {result.description}")
            zone_note = f" (evaluated in {tz})" if tz else ""
            print(f"next {len(result.next)} fire time(s), UTC{zone_note}:")
            for t in result.next:
                print(f"  {t:%Y-%m-%dT%H:%M:%SZ}  {t:%a}")
            if len(result.next) < n:
                print("  (no further fire time within five years: the schedule never fires)")
    raise typer.Exit(0 if result.valid else 2)


@app.command("simulate")
def simulate_command(
    scenario: Annotated[Path, typer.Argument(
        help="The scenario file (YAML): window, Longhorn version, volumes, RecurringJobs.",
        show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Simulate a scenario's backups, deletions and restores on the backupstore lock."""
    if output not in ("text", "json"):
        raise _fail(f"--output must be text or json, not {output!r}", 2)
    try:
        sc = load_scenario(scenario)
    except ScenarioError as e:
        for problem in e.problems:
            print(f"error: {scenario}: {problem}", file=sys.stderr)
        raise typer.Exit(2) from None
    except OSError as e:
        raise _fail(f"{scenario}: cannot read the scenario file ({e.strerror})", 2) from None
    summary = summarize_scenario(run_scenario(sc), sc)
    print(json.dumps(summary, indent=2) if output == "json" else format_text(summary))


def _fitted(store: Path | None, sample: bool, from_file: list[Path] | None = None,
            backup_columns: tuple[str, ...] | None = None,
            problems: list | None = None) -> tuple[dict, DurationFits]:
    """The frames and duration fits of the one data option set: --sample, --from-file
    or --store. From a store, the fits it keeps from its present collections (fitted
    and kept on the first run after a collection, see
    :func:`advisor.inputs.model_inputs`), and of its Backups only ``backup_columns``.
    ``problems``, if given, gets the records a file load skipped or warned about."""
    if sum(bool(x) for x in (store, from_file, sample)) > 1:
        raise _fail("give one of --store, --from-file, --sample", 2)
    if not (sample or from_file):  # (no --store: the default store)
        try:
            inputs = model_inputs(HistoryStore(store), backup_columns=backup_columns)
        except StoreError as e:
            raise _fail(str(e), 1) from None
        return inputs.frames, inputs.fits
    if sample:
        frames = load_sample().frames
    else:
        try:
            result = load_files(from_file or [])
        except InputError as e:
            raise _fail(str(e), 2) from None
        _print_load(result, False)
        if problems is not None:  # (what the caller reports)
            problems.extend(result.problems)
        if result.usable_rows == 0:
            raise _fail("no usable record in the input", 2)
        frames = result.frames
    return frames, fit_durations(frames["backups"], frames.get("volumes"),
                                 frames.get("backup_volumes"), jobs=frames.get("jobs"))


def _week_of(week: str | None, start: str | None) -> str | None:
    """``--week``, or the ISO week of ``--start``'s Monday (on or after it)."""
    if start is None:
        return week
    if week is not None:
        raise _fail("give --week or --start, not both", 2)
    try:
        monday = default_window(start)[0]
    except ValueError as e:
        raise _fail(f"--start {start!r}: {e}", 2) from None
    y, w, _ = monday.isocalendar()
    return f"{y}-W{w:02d}"


@app.command("recommend")
def recommend_command(
    store: StoreOpt = None,
    from_file: Annotated[list[Path] | None, typer.Option(
        "--from-file", "-f", help="Read the history from files instead of the store.",
        show_default=False)] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Use the sample fleet.")] = False,
    target_risk: Annotated[float, typer.Option(
        "--target-risk", help="Largest acceptable P(conflict) and P(skip) per run.",
        min=1e-6, max=0.5)] = 0.01,
    job: Annotated[list[str] | None, typer.Option(
        "--job", help="Only this job (repeatable).", show_default=False)] = None,
    volume: Annotated[list[str] | None, typer.Option(
        "--volume", help="Only list these volumes (repeatable).", show_default=False)] = None,
    cluster: Annotated[str | None, typer.Option(
        "--cluster", help="The cluster, when the history holds several.",
        show_default=False)] = None,
    version: Annotated[str, typer.Option(
        "--longhorn-version", help="Longhorn's rules to apply.")] = LATEST,
    week: Annotated[str | None, typer.Option(
        "--week", help="The ISO week to score, e.g. 2026-W47 (default: the history's last "
        "complete week, as the report's).", show_default=False)] = None,
    start: Annotated[str | None, typer.Option(
        "--start", help="Old form of --week: the week from this date's Monday on or "
        "after it.", show_default=False, hidden=True)] = None,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="table, json, yaml or patch.")] = "table",
) -> None:
    """The smallest safe interval per RecurringJob, and each volume's risk now.
    Prints changes (YAML, kubectl patch); never applies them."""
    if output not in ("table", "json", "yaml", "patch"):
        raise _fail(f"--output must be table, json, yaml or patch, not {output!r}", 2)
    try:
        settings = Settings(target=target_risk, week=_week_of(week, start),
                            version=version, cluster=cluster)
    except ValueError as e:
        raise _fail(str(e), 2) from None
    # (of a store's Backups, what comparing with the history and finding DR sources read)
    frames, fits = _fitted(store, sample, from_file,
                           backup_columns=(*OBSERVED_BACKUP_COLUMNS, "backup"))
    try:
        analysis = analyse(frames, fits, settings, jobs=job)
    except ValueError as e:
        raise _fail(str(e), 2) from None
    fleet, notes, risk, advice = (analysis.fleet, analysis.notes, analysis.assessment,
                                  analysis.recommendations)
    table = risk.table.merge(analysis.observed.drop(columns=["cluster"]),
                             on="volume", how="left")
    if volume:
        table = table[table["volume"].isin(volume)]
    recs = advice
    specs = {j.name: j for j in fleet.jobs}
    if output == "json":
        cols = ["volume", "p_conflict_per_run", "p_conflict_per_week",
                "expected_conflicts_per_week", "skipped_runs_per_week", "history_weeks",
                "observed_conflicts", "observed_per_week", "predicted_per_week",
                "predicted_lo", "predicted_hi", "fit"]
        rows = table[cols].astype(object).where(table[cols].notna(), None)
        print(json.dumps({"recommendations": [r.to_dict() for r in recs],
                          "volumes": rows.to_dict("records"),
                          "longhorn_version": version, "target_risk": target_risk,
                          "week": analysis.window.label,
                          "window": [str(risk.start), str(risk.end)],
                          "assumptions": list(notes)}, indent=2, default=float))
    elif output == "yaml":
        extras = job_labels_and_parameters(frames["jobs"], cluster)
        print("---\n".join(recurring_job_yaml(specs[r.job], r.recommended_cron,
                                              **extras.get(r.job, {}))
                           for r in recs if r.changed) or "# no change recommended")
    elif output == "patch":
        print("\n".join(kubectl_patch(r.job, r.recommended_cron) for r in recs
                        if r.changed) or "# no change recommended")
    else:
        print(f"Longhorn {version} rules, week {risk.start:%Y-%m-%d}, "
              f"target {target_risk:g} per run")
        for r in recs:
            print(f"- {r}")
        print()
        shown = table.rename(columns={"predicted_per_week": "predicted/wk",
                                      "observed_per_week": "observed/wk",
                                      "skipped_runs_per_week": "skipped/wk"})
        print(shown[["volume", "p_conflict_per_run", "p_conflict_per_week", "predicted/wk",
                     "observed/wk", "fit", "skipped/wk", "draws"]]
              .head(30).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        if len(table) > 30:
            print(f"... {len(table) - 30} more volumes (-o json lists all)")
        verdicts = table["fit"].value_counts()
        print("model against the history's lock conflicts: " + ", ".join(
            f"{n} volume(s) {k}" for k, n in verdicts.items())
              + " (observed: Backups whose messages report a lock conflict, per week of "
              "history; predicted: the same kinds, 95 % interval in -o json)")
        for n in notes:
            print(f"assumed: {n}")


@app.command("report")
def report_command(
    store: StoreOpt = None,
    from_file: Annotated[list[Path] | None, typer.Option(
        "--from-file", "-f", help="Read the history from files instead of the store.",
        show_default=False)] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Use the sample fleet.")] = False,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder to write into (the previous week's JSON there is what "
        "'changed since' compares with).")] = Path("reports"),
    formats: Annotated[str, typer.Option(
        "--format", help="Comma-separated: html, md, json, csv.")] = "html,md,json,csv",
    week: Annotated[str | None, typer.Option(
        "--week", help="The ISO week to report, YYYY-Www (default: the last complete week "
        "of the history).", show_default=False)] = None,
    cluster: Annotated[str | None, typer.Option(
        "--cluster", help="The cluster, when the history holds several.",
        show_default=False)] = None,
    target_risk: Annotated[float, typer.Option(
        "--target-risk", help="Largest acceptable P(conflict) and P(skip) per run.",
        min=1e-6, max=0.5)] = 0.01,
    version: Annotated[str, typer.Option(
        "--longhorn-version", help="Longhorn's rules to apply.")] = LATEST,
    detailed: Annotated[int, typer.Option(
        "--detailed", min=0, help="The riskiest volumes given their own charts (duration "
        "distribution and trend).")] = 20,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bar (there is none when stderr is not a "
        "terminal).")] = False,
) -> None:
    """The weekly report: which volumes contend for the backupstore lock, why, and what
    to change (HTML, Markdown, JSON, CSV and charts). Prints patches; never applies them."""
    from advisor.advice.settings import iso_week, latest_activity
    from advisor.report.build import REPORT_BACKUP_COLUMNS, build_report
    from advisor.report.progress import stages
    from advisor.report.render import FORMATS, load_previous, write_report

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    if not wanted or set(wanted) - set(FORMATS):
        raise _fail(f"--format: choose from {', '.join(FORMATS)}, not {formats!r}", 2)
    try:
        iso_week(week)
        behaviour(version)
    except ValueError as e:
        raise _fail(str(e), 2) from None
    with stages(enabled=not quiet) as step:
        step("reading the history")
        loaded: list = []
        frames, fits = _fitted(store, sample, from_file,
                               backup_columns=REPORT_BACKUP_COLUMNS, problems=loaded)
        problems = _load_problems(store) if not (sample or from_file) else loaded
        label = iso_week(week, latest_activity(frames["backups"]))[0]
        try:
            report = build_report(frames, fits, week=week, cluster=cluster, version=version,
                                  target=target_risk, previous=load_previous(out, label),
                                  problems=problems, detailed=detailed, progress=step)
        except ValueError as e:
            raise _fail(str(e), 2) from None
        step("charts")
        try:
            written = write_report(report, out, wanted, on_chart=step)
        except OSError as e:
            raise _fail(f"cannot write the report into {out}: {e}", 1) from None
    s = report.summary
    print(f"week {label}, cluster {report.meta['cluster']}: {s['volumes_at_risk']} of "
          f"{s['volumes']} volumes at risk; {s['conflicts_observed']} lock conflicts "
          f"observed, {s['conflicts_predicted']:.1f} predicted")
    for c in s["top_changes"]:
        print(f"- {c}")
    for p in written:
        if p.suffix != ".png":
            print(f"wrote {p}")
    charts = sum(p.suffix == ".png" for p in written)
    if charts:
        print(f"wrote {charts} chart(s) beside the Markdown")


def _load_problems(store: Path | None) -> list:
    """The records the last collection of the store skipped or warned about (kept in
    its manifest by ``collect``), as :class:`Problem` s."""
    from advisor.sources.base import Problem

    try:
        collections = HistoryStore(store).collections()
    except StoreError:
        return []
    for c in reversed(collections):
        if "problems" in c.meta:
            return [Problem(f"collection {c.id}", "", "", p["text"],
                            p.get("severity", "skipped")) for p in c.meta["problems"]]
    return []


@app.command("check")
def check_command(
    files: Annotated[list[Path], typer.Argument(
        help="Proposed RecurringJob manifests (and optionally Volume manifests): YAML "
        "or JSON files or folders.", show_default=False)],
    max_risk: Annotated[float, typer.Option(
        "--max-risk", help="Largest acceptable P(conflict) per run.", min=1e-6,
        max=0.5)] = 0.01,
    store: Annotated[Path | None, typer.Option(
        "--store", help="Judge against this history store's volumes and durations.",
        show_default=False)] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Judge against the sample fleet's history.")] = False,
    version: Annotated[str, typer.Option(
        "--longhorn-version", help="Longhorn's rules to apply.")] = LATEST,
    week: Annotated[str | None, typer.Option(
        "--week", help="With history: the ISO week to score (default: the history's last "
        "complete week).", show_default=False)] = None,
    start: Annotated[str | None, typer.Option(
        "--start", help="Old form of --week.", show_default=False, hidden=True)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """Check proposed RecurringJobs before applying them (a GitOps gate): exit 0 within
    --max-risk, 1 above it, 2 on invalid input."""
    if output not in ("table", "json"):
        raise _fail(f"--output must be table or json, not {output!r}", 2)
    try:
        settings = Settings(target=max_risk, week=_week_of(week, start), version=version)
        proposed = load_files(files)
    except (InputError, ValueError) as e:
        raise _fail(str(e), 2) from None
    history = _fitted(store, sample) if (store or sample) else None
    try:
        result = gate.check(proposed, settings, history=history)
    except gate.ProposalError as e:
        for line in e.problems:
            print(f"error: {line}", file=sys.stderr)
        raise typer.Exit(2) from None
    if output == "json":
        print(result.to_json())
    else:
        print(f"{result.verdict}: {len(result.findings)} finding(s), max risk "
              f"{max_risk:g} per run" + (f", week {result.week}" if result.week else ""))
        for f in result.findings:
            p = "" if f["p_per_run"] is None else f" (P per run {f['p_per_run']:.3g})"
            print(f"- [{f.get('severity', 'high')}] {f['kind']}{p}: {f['explanation']}")
        for a in result.assumptions:
            print(f"assumed: {a}")
    raise typer.Exit(1 if result.risky else 0)


def main() -> None:
    """Entry point of the ``advisor`` console script (a process of its own: its file loads
    may freeze what they leave alive, see :func:`advisor.sources.files.no_cycle_collection`)."""
    from advisor.sources import files

    files.FREEZE_AFTER_LOAD = True
    app()
