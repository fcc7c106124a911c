"""The history store's commit, with the writer killed at every step of it in turn.

A child process imports the advisor once; for each scenario it forks one writer that
performs the write unharmed and lists its steps (every file-system operation it makes:
the ``os``/``io``/builtins calls that create, write, flush, fsync, rename, delete, copy or
chmod a file, and pyarrow's Parquet writer opening, writing and closing its file), then,
for k = 0..N, forks a writer on a fresh copy of the same store that kills itself with
SIGKILL just before its step k (k = N: just after its last step). The counting is done by
``sys.setprofile`` on C calls, so a non-atomic commit (``shutil.copytree``, a manifest
written in place) is cut between its own files, not only around it.

The test process then checks every store left behind, as a reader and as the next writer
would find it: it opens and reads; each visible collection is whole (its manifest, and
every file the manifest lists with the rows it says); the rows read are exactly those
committed before, or those and the write's own (never a part, never a row twice); nothing
in flight is visible; and a next writer succeeds and cleans up what the dead one left.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import advisor
from advisor import schema
from advisor.store import HistoryStore, StoreError
from tests.test_store import HOUR, T0, backup, backups, job

# The advisor this test process imports (a scratch copy of the repository first on the
# import path tests that copy): the writers must run the same one.
ADVISOR_ROOT = Path(advisor.__file__).resolve().parents[1]
MINUTE = pd.Timedelta(minutes=1)

# (some 25 s of CPU: about 120 writers forked and checked)
pytestmark = pytest.mark.slow(seconds=50)

# argv[1]: a pickle of {scenario: spec} (the tests pass one scenario). Prints
# {"advisor": ..., "scenarios": {scenario: {"learn": {...}, "kills": [...]}}} as JSON.
# Forks every writer from one interpreter, so the imports are paid once; the forked
# writers leave only by os._exit or SIGKILL.
CRASHER = r'''
import gc, io, json, os, pickle, shutil, signal, sys, traceback, types
import pyarrow.parquet as pq
import advisor
from advisor.store import HistoryStore

# os functions that change files (C calls, by name). Opening is a step when it may
# create or write the file (seen by the "open" audit event, which has the flags; opening
# to read changes nothing). A buffered file's write() only fills its buffer: its flush
# and close reach the file, so those are the steps (and an unbuffered FileIO's write).
OS_CALLS = {"mkdir", "rename", "replace", "fsync", "fdatasync", "write", "pwrite",
            "sendfile", "copy_file_range", "splice", "ftruncate", "truncate", "unlink",
            "remove", "rmdir", "utime", "chmod", "link", "symlink", "setxattr"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
FILE_CALLS = {"flush", "close", "__exit__", "truncate"}
NAMES = OS_CALLS | FILE_CALLS
STEP_EVENTS = {"c_call", "call", "audit"}
# pyarrow's Parquet writer is Cython (no C-call events): count its Python layer, which
# creates the file, then writes the row groups, then the footer.
PARQUET = {pq.ParquetWriter.__init__.__code__: "parquet.open",
           pq.ParquetWriter.write_table.__code__: "parquet.write_table",
           pq.ParquetWriter.close.__code__: "parquet.close"}
REAL = {name: getattr(os, name) for name in ("fsync", "rename", "replace")}
events = []  # fsync, rename, replace with their (real) paths, in order


def recording(fn):
    """``fn`` (os.fsync, os.rename or os.replace), appending what it is asked to events."""
    def recorded(*args, **kwargs):
        if fn.__name__ == "fsync":
            fd = args[0] if isinstance(args[0], int) else args[0].fileno()
            events.append(["fsync", os.readlink(f"/proc/self/fd/{fd}")])
        else:
            events.append([fn.__name__, *(os.path.realpath(os.fspath(p)) for p in args[:2])])
        return fn(*args, **kwargs)
    return recorded


def writable(file):
    try:
        return file.writable()
    except ValueError:  # (closed)
        return False


def step(frame, event, arg):
    """The file-system step a profiler event is, and where it was made; else None."""
    if event == "c_call":
        name = arg.__name__
        if name not in NAMES:
            return None
        owner = getattr(arg, "__self__", None)
        if isinstance(owner, types.ModuleType):
            if name not in OS_CALLS:
                return None
        elif isinstance(owner, io.IOBase) and not isinstance(owner, (io.StringIO, io.BytesIO)):
            if not (name in FILE_CALLS or name == "write" and isinstance(owner, io.FileIO)) \
                    or not writable(owner):
                return None
            name = f"{type(owner).__name__}.{name}"
        else:
            return None
    elif event == "audit":
        if frame != "open" or not arg[2] & WRITE_FLAGS:
            return None
        name, frame = "open", sys._getframe(3)  # (past step, profile and the hook)
    elif event == "call" and frame.f_code in PARQUET:
        name, frame = PARQUET[frame.f_code], frame.f_back
    else:
        return None
    while frame.f_code.co_name == "recorded":
        frame = frame.f_back
    code = frame.f_code
    return f"{name} in {code.co_name} ({os.path.basename(code.co_filename)}:{frame.f_lineno})"


def write(spec, path, kill_at, log):
    """In a forked process: the write of ``spec`` on the store at ``path``, killed by
    SIGKILL just before its step ``kill_at`` (None: not killed, its steps logged)."""
    try:
        for name, fn in REAL.items():
            setattr(os, name, recording(fn))
        store = HistoryStore(path)
        ids = store.collection_ids()  # (what a caller of keep_derived read from)
        steps = []
        counting = False

        def profile(frame, event, arg):
            # (most events are none: cheap tests first, as this runs on every call)
            if event == "c_call" and arg.__name__ not in NAMES or event == "call" \
                    and frame.f_code not in PARQUET or event not in STEP_EVENTS:
                return
            what = step(frame, event, arg)
            if what is None or not counting:
                return
            if len(steps) == kill_at:
                os.write(log, json.dumps({"step": what}).encode())
                os.kill(os.getpid(), signal.SIGKILL)
            steps.append(what)

        sys.addaudithook(lambda event, args: profile(event, "audit", args))
        counting = True
        sys.setprofile(profile)
        if spec["op"] == "append":
            result = store.append(spec["frames"], supersede=spec["supersede"]).collection_id
        else:
            result = store.keep_derived(spec["name"], spec["key"], spec["frames"], ids)
        sys.setprofile(None)
        counting = False
        if kill_at is None:
            os.write(log, json.dumps({"steps": steps, "events": events,
                                      "result": result}).encode())
            os._exit(0)
        os.write(log, json.dumps({"step": "after the last step"}).encode())
        os.kill(os.getpid(), signal.SIGKILL)
    except BaseException:
        sys.setprofile(None)
        os.write(log, json.dumps({"error": traceback.format_exc()}).encode())
    os._exit(3)


def run(spec, dest, kill_at):
    """Fork a writer on a copy of the scenario's store at ``dest``: (how it ended, its log)."""
    if os.path.isdir(spec["base"]):
        shutil.copytree(spec["base"], dest, symlinks=True)
    log = os.open(dest + ".log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:
        write(spec, dest, kill_at, log)
    os.close(log)
    _, status = os.waitpid(pid, 0)
    with open(dest + ".log") as fh:
        text = fh.read()
    report = json.loads(text) if text else {"error": "nothing logged"}
    report["sigkill"] = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    report["exit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return report


with open(sys.argv[1], "rb") as fh:
    specs = pickle.load(fh)
gc.freeze()  # (the forked writers' collections then leave the shared pages alone)
out = {"advisor": advisor.__file__, "scenarios": {}}
for scenario, spec in specs.items():
    os.makedirs(spec["work"])
    learn = run(spec, os.path.join(spec["work"], "learn"), None)
    kills = []
    if "steps" in learn:
        for k in range(len(learn["steps"]) + 1):
            kills.append(run(spec, os.path.join(spec["work"], str(k)), k))
    out["scenarios"][scenario] = {"learn": learn, "kills": kills}
print(json.dumps(out))
'''

# The frames keep_derived writes in the derived scenario, and those kept before it.
OLD_FITS = {"table": pd.DataFrame({"volume": ["vol-a"], "p50_s": [60.0]})}
NEW_FITS = {"table": pd.DataFrame({"volume": ["vol-a", "vol-b"], "p50_s": [61.0, 300.5]}),
            "params": pd.DataFrame({"volume": ["vol-a", "vol-b"], "shape": [1.5, 2.25],
                                    "scale": [40.0, 200.0]}),
            "summary": pd.DataFrame({"fits": [2], "version": ["v2"]})}


def _populated(base: Path) -> dict:
    """Two collections, then an append of new rows to two frames."""
    s = HistoryStore(base)
    s.append({"backups": backups(backup("b1"), backup("b2", "Error")), "jobs": job("0 2 * * *")})
    s.append({"backups": backups(backup("b3", "InProgress", T0 + HOUR))})
    return {"op": "append", "supersede": [], "frames": {
        "backups": backups(backup("b3", "Completed", T0 + 2 * HOUR), backup("b4")),
        "jobs": job("30 2 * * *", T0 + HOUR)}}


def _first(base: Path) -> dict:
    """The first append into a store that does not exist yet (store.json is written too)."""
    return {"op": "append", "supersede": [], "frames": {
        "backups": backups(backup("b1"), backup("b2", "Error")), "jobs": job("0 2 * * *")}}


def _superseding(base: Path) -> dict:
    """A collection of two frames, another one, then an append superseding the first (as
    ``advisor watch`` rewrites its hour): the new collection carries both of its frames."""
    s = HistoryStore(base)
    first = s.append({"backups": backups(backup("b1", "Pending")), "jobs": job("0 2 * * *")})
    s.append({"backups": backups(backup("b9", volume="vol-b"))})
    return {"op": "append", "supersede": [first.collection_id], "frames": {
        "backups": backups(backup("b1", "InProgress", T0 + MINUTE),
                           backup("b2", "Pending", T0 + MINUTE))}}


def _derived(base: Path) -> dict:
    """Two collections and fits kept from them with key v1; then fits kept with key v2."""
    s = HistoryStore(base)
    s.append({"backups": backups(backup("b1"))})
    s.append({"jobs": job("0 2 * * *")})
    assert s.keep_derived("fits", "v1", OLD_FITS, s.collection_ids())
    return {"op": "keep_derived", "name": "fits", "key": "v2", "frames": NEW_FITS}


SCENARIOS = {"append": _populated, "first-append": _first, "supersede": _superseding,
             "derived": _derived}


@dataclass
class Crash:
    """One scenario: its spec, the unharmed writer's run and the store of each kill."""

    base: Path
    spec: dict
    learn: dict
    kills: list[dict]
    work: Path

    @property
    def steps(self) -> list[str]:
        return self.learn["steps"]

    def store(self, k: int) -> Path:
        return self.work / str(k)

    def where(self, k: int) -> str:
        return (f"killed before step {k} of {len(self.steps)} ({self.steps[k]})"
                if k < len(self.steps) else f"killed after the last of {len(self.steps)} steps")


class Crashes:
    """Each scenario's writer run once unharmed, then killed at each of its steps: run
    when a test first asks for the scenario (so a test of one scenario pays for one)."""

    def __init__(self, root: Path):
        self.root = root
        self.done: dict[str, Crash] = {}

    def __getitem__(self, name: str) -> Crash:
        if name not in self.done:
            self.done[name] = self._run(name)
        return self.done[name]

    def _run(self, name: str) -> Crash:
        base = self.root / name / "base"
        spec = {**SCENARIOS[name](base), "base": str(base), "work": str(self.root / name /
                                                                        "runs")}
        (self.root / f"{name}.pickle").write_bytes(pickle.dumps({name: spec}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ADVISOR_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        proc = subprocess.run([sys.executable, "-c", CRASHER,
                               str(self.root / f"{name}.pickle")],
                              capture_output=True, text=True, env=env, cwd=ADVISOR_ROOT,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout)
        assert Path(out["advisor"]).resolve() == Path(advisor.__file__).resolve()
        return Crash(base, spec, **out["scenarios"][name], work=Path(spec["work"]))


@pytest.fixture(scope="session")
def crashes(tmp_path_factory) -> Crashes:
    """The scenarios' crash runs, shared by the tests of this session (a session, not a
    module, fixture: run in whatever order, the tests never pay for one twice)."""
    return Crashes(tmp_path_factory.mktemp("crash"))


def _rows(frames: dict[str, pd.DataFrame]) -> Counter:
    """The rows of ``frames`` as a multiset (a row twice counts twice)."""
    return Counter((name, *map(repr, row)) for name, df in frames.items() if len(df)
                   for row in df.itertuples(index=False, name=None))


def _describe(got: Counter, want: Counter) -> str:
    extra, missing = got - want, want - got
    return (f"{sum(extra.values())} row(s) too many, e.g. {list(extra)[:2]}; "
            f"{sum(missing.values())} missing, e.g. {list(missing)[:2]}")


def _assert_same_in_process(crash: Crash, dest: Path) -> None:
    """The scenario's write made in this process, unharmed, on a copy of its store at
    ``dest`` leaves the rows (or derived frames) the forked writer left: the counting of
    steps changes nothing. (It also shows mutation testing, which records the code each
    test runs in the test's own process only, what code the forked writers run.)"""
    if crash.base.exists():
        shutil.copytree(crash.base, dest, symlinks=True)
    s, learnt, spec = HistoryStore(dest), HistoryStore(crash.work / "learn"), crash.spec
    if spec["op"] == "append":
        result = s.append(spec["frames"], supersede=spec["supersede"])
        assert result.collection_id is not None and crash.learn["result"] is not None
        assert len(s.collection_ids()) == len(learnt.collection_ids())
        assert _rows(s.read_all(latest=False)) == _rows(learnt.read_all(latest=False))
    else:
        assert s.keep_derived(spec["name"], spec["key"], spec["frames"], s.collection_ids())
        for kept in (s.derived(spec["name"], spec["key"]),
                     learnt.derived(spec["name"], spec["key"])):
            assert kept is not None and _same_frames(kept, spec["frames"])


def _assert_killed_at_each_step(crash: Crash) -> None:
    """The unharmed writer ran; each killed one died of SIGKILL at the step it was meant to
    (the steps are the same in every run, so step k is the same operation each time)."""
    assert "steps" in crash.learn, crash.learn.get("error")
    assert len(crash.kills) == len(crash.steps) + 1
    for k, kill in enumerate(crash.kills):
        assert kill["sigkill"], f"writer {k} was not killed: {kill.get('error') or kill}"
        want = crash.steps[k] if k < len(crash.steps) else "after the last step"
        assert kill["step"] == want, f"writer {k} died at {kill['step']}, not {want}"


def _assert_whole(path: Path, where: str) -> tuple[HistoryStore, list[str]]:
    """The store opens; every visible collection holds its manifest and exactly the files it
    lists, each with the rows it says; nothing else (half written, in flight) is in
    ``collections/`` but superseded collections a dead writer had yet to delete (which
    are returned)."""
    try:
        s = HistoryStore(path)
        infos = s.collections()  # (a StoreError on an unreadable manifest)
    except StoreError as e:
        pytest.fail(f"{where}: {e}")
    assert [c.id for c in infos] == s.collection_ids()
    for c in infos:
        folder = path / "collections" / c.id
        manifest = json.loads((folder / "manifest.json").read_text())
        files = {f["file"]: f["rows"] for f in manifest["frames"].values()}
        held = sorted(p.name for p in folder.iterdir())
        assert held == sorted({"manifest.json", *files}), \
            f"{where}: collection {c.id} holds {held}; its manifest lists {sorted(files)}"
        for file, rows in files.items():
            got = pq.read_metadata(folder / file).num_rows
            assert got == rows, f"{where}: {c.id}/{file} has {got} rows, not {rows}"
    superseded = {h for c in infos for h in c.supersedes}
    on_disk = set(os.listdir(path / "collections")) if (path / "collections").is_dir() else set()
    assert on_disk <= {*s.collection_ids(), *superseded}, f"{where}: {on_disk}"
    return s, sorted(on_disk - set(s.collection_ids()))


def _assert_next_writer_cleans_up(path: Path, rows: Counter, where: str) -> None:
    """A fresh append after the dead writer succeeds, leaves nothing in staging, deletes
    the superseded collections the dead one left, and adds its row to those read before."""
    s = HistoryStore(path)
    extra = {"backups": backups(backup("next-writer", at=T0 + 3 * HOUR))}
    result = s.append(extra)
    assert result.collection_id is not None and result.counts["backups"].added == 1, where
    assert list((path / ".staging").iterdir()) == [], where
    assert sorted(os.listdir(path / "collections")) == s.collection_ids(), where
    s = HistoryStore(path)  # (another process)
    _assert_whole(path, where)
    assert _rows(s.read_all(latest=False)) == rows + _rows(extra), where


def _assert_all_or_nothing(crash: Crash) -> list[int]:
    """After every kill the store is whole and holds the rows committed before or those and
    the write's own, and the next writer succeeds; once the write is in (at one rename),
    it stays in for every later kill. Returns the kills that left superseded collections
    on disk (hidden) for the next writer to delete."""
    before = (_rows(HistoryStore(crash.base).read_all(latest=False)) if crash.base.exists()
              else Counter())
    after = before + _rows({n: schema.coerce(n, df) for n, df in crash.spec["frames"].items()})
    outcomes, left_hidden = [], []
    for k in range(len(crash.kills)):
        where, path = crash.where(k), crash.store(k)
        s, hidden = _assert_whole(path, where)
        got = _rows(s.read_all(latest=False))
        s.read("backups")  # (choosing the latest rows works too)
        if got not in (before, after):
            pytest.fail(f"{where}: the rows read are neither those before the write "
                        f"({_describe(got, before)}) nor those after it "
                        f"({_describe(got, after)})")
        outcomes.append(got == after)
        if hidden:
            assert got == after and hidden == sorted(crash.spec["supersede"]), where
            left_hidden.append(k)
        _assert_next_writer_cleans_up(path, got, where)
    assert not outcomes[0] and outcomes[-1], "the kills do not span the write"
    commit = outcomes.index(True)
    assert all(outcomes[commit:]), f"the write was in, then out again: {outcomes}"
    assert crash.steps[commit - 1].startswith("rename "), \
        f"the write became visible at {crash.where(commit - 1)}, not at a rename"
    return left_hidden


@pytest.mark.parametrize("scenario", ["append", "first-append"])
def test_an_append_killed_at_any_step_is_wholly_in_or_wholly_out(crashes, scenario, tmp_path):
    """A writer killed before any step of an append (to a store, or the first one, which
    also writes store.json) leaves a readable store with every earlier row and either all
    of the new collection or none of it; the next writer succeeds and cleans up."""
    crash = crashes[scenario]
    _assert_same_in_process(crash, tmp_path / "store")
    _assert_killed_at_each_step(crash)
    _assert_all_or_nothing(crash)


def test_a_superseding_append_killed_at_any_step_shows_old_or_new_rows_once(crashes, tmp_path):
    """A writer killed before any step of an append superseding a collection leaves readers
    the superseded collection's rows or the new collection's (which carries them), each
    row once, never both and never neither; the next writer deletes the hidden one."""
    crash = crashes["supersede"]
    _assert_same_in_process(crash, tmp_path / "store")
    _assert_killed_at_each_step(crash)
    # some kills land between the rename and the deletion of the superseded collection
    assert _assert_all_or_nothing(crash), "no kill left the superseded collection hidden"


def _tree(path: Path) -> dict[str, bytes]:
    """Every file of the store but derived frames, staging and the lock, with its bytes."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.relative_to(path).parts[0] not in
            ("derived", ".staging", ".writer.lock")}


def _same_frames(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> bool:
    assert sorted(got) == sorted(want), f"frames {sorted(got)}, not {sorted(want)}"
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name])
    return True


def test_keep_derived_killed_at_any_step_keeps_old_or_whole_new_frames(crashes, tmp_path):
    """A writer killed before any step of keep_derived leaves ``derived()`` returning the
    frames kept before (their key) or every new frame (the new key), never a part, and
    one of the two always; the collections are untouched; the next keep succeeds."""
    crash = crashes["derived"]
    _assert_same_in_process(crash, tmp_path / "store")
    _assert_killed_at_each_step(crash)
    assert crash.learn["result"] is True
    tree = _tree(crash.base)
    new_in = []
    for k in range(len(crash.kills)):
        where, path = crash.where(k), crash.store(k)
        s, _ = _assert_whole(path, where)
        assert _tree(path) == tree, f"{where}: the collections changed"
        old, new = s.derived("fits", "v1"), s.derived("fits", "v2")
        assert old is None or _same_frames(old, OLD_FITS), where
        assert new is None or _same_frames(new, NEW_FITS), where
        assert old is not None or new is not None, f"{where}: neither old nor new frames"
        kept = os.listdir(path / "derived" / "fits")  # (nothing in flight)
        assert all(re.fullmatch(r"[0-9a-f]{24}", d) for d in kept), f"{where}: {kept}"
        new_in.append(new is not None)
        # the next writer
        assert s.keep_derived("fits", "v2", NEW_FITS, s.collection_ids()), where
        again = HistoryStore(path).derived("fits", "v2")
        assert again is not None, f"{where}: after the next keep_derived, no frames read"
        assert _same_frames(again, NEW_FITS)
        assert list((path / ".staging").iterdir()) == [], where
    assert not new_in[0] and all(new_in[new_in.index(True):]), new_in
    assert crash.steps[new_in.index(True) - 1].startswith("rename ")


def _published(crash: Crash) -> Path:
    """The folder the unharmed writer put in place: its collection, or its derived frames."""
    assert "events" in crash.learn, crash.learn.get("error")
    store = (crash.work / "learn").resolve()
    if crash.spec["op"] == "append":
        return store / "collections" / crash.learn["result"]
    [published] = (store / "derived" / "fits").iterdir()
    return published


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_what_a_write_renames_into_place_was_fsynced_before_and_after(crashes, scenario,
                                                                      tmp_path):
    """What a kill cannot show, a power cut would: the unharmed writer fsyncs every file it
    renames into place and the staged folder itself before the rename, and the folder it
    lands in after it, so the rename cannot outlast a power cut without its contents."""
    crash = crashes[scenario]
    _assert_same_in_process(crash, tmp_path / "store")
    published = _published(crash)
    events = crash.learn["events"]
    renames = [i for i, e in enumerate(events) if e[0] in ("rename", "replace")]
    assert str(published) in {events[i][2] for i in renames}, \
        f"{published} was not put in place by a rename"
    for i in renames:
        _, src, dst = events[i]
        synced = {e[1] for e in events[:i] if e[0] == "fsync"}
        inside = ([os.path.join(src, name) for name in os.listdir(dst)]
                  if os.path.isdir(dst) else [])
        unsynced = [p for p in [*inside, src] if p not in synced]
        assert not unsynced, f"renamed {src} -> {dst} before fsyncing {unsynced}"
        assert os.path.dirname(dst) in {e[1] for e in events[i + 1:] if e[0] == "fsync"}, \
            f"{os.path.dirname(dst)} not fsynced after the rename into it"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_kills_fall_between_the_single_file_operations(crashes, scenario, tmp_path):
    """The steps are fine enough to cut a write file by file: for each Parquet file put in
    place its creation, rows and footer are steps, each file and the folder is fsynced
    once at least, and one rename puts the folder in place (so other tests have killed the
    writer between every two of these)."""
    crash = crashes[scenario]
    _assert_same_in_process(crash, tmp_path / "store")
    parts = len(list(_published(crash).glob("*.parquet")))
    kinds = Counter(step.split()[0] for step in crash.steps)
    assert parts >= 1 and kinds["rename"] == 1, kinds
    assert kinds["parquet.open"] == kinds["parquet.write_table"] == kinds["parquet.close"] \
        == parts, kinds
    assert kinds["fsync"] >= parts + 2, kinds  # (each part, the manifest, the folder)
