"""Print the score of a finished ``mutmut run`` (in ./mutants) and its surviving mutants.

Used by ``make mutation``; not a test module. The score counts killed and timed-out
mutants against all that ran (a mutant no selected test reaches counts as surviving).

Each survivor is looked up in ``tests/mutation_equivalents.toml``: a mutant that no test
can tell from the code (``sort_keys=None`` for ``sort_keys=False``) is listed there with
why, by its module, its function and the line it changes, not by mutmut's number (which
moves whenever the function changes). Survivors not in that list are printed with their
diff, and the exit status is 1: a new survivor needs a test, or an entry that says why
none can catch it. Entries that match no survivor are printed too (stale: the code or
the tests changed), so the list does not keep reasons for mutants that are gone.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")
# mutmut's names: advisor.cron.x_parse__mutmut_3, advisor.cron.xǁSpecScheduleǁnext__mutmut_7
NAME = re.compile(r"^(?P<module>[\w.]+)\.x(?:_(?P<func>\w+?)|ǁ(?P<cls>\w+)ǁ(?P<meth>\w+?))"
                  r"__mutmut_\d+$")


@dataclass(frozen=True)
class Change:
    """One mutant as a reader sees it: where, and the lines it removes and adds."""

    module: str
    function: str
    removed: tuple[str, ...]
    added: tuple[str, ...]

    def key(self) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
        return (self.module, self.function, self.removed, self.added)


def _norm(line: str) -> str:
    return " ".join(line.split())


def _mutmut(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], check=True,
                          capture_output=True, text=True).stdout


def change_of(name: str, diff: str) -> Change:
    """The :class:`Change` of mutant ``name`` from ``mutmut show``'s unified diff."""
    m = NAME.match(name)
    if m is None:
        raise ValueError(f"unexpected mutant name {name!r}")
    func = m["func"] or f"{m['cls']}.{m['meth']}"
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(_norm(line[1:]))
        elif line.startswith("+"):
            added.append(_norm(line[1:]))
    return Change(m["module"], func, tuple(removed), tuple(added))


def equivalents(path: Path = EQUIVALENTS) -> dict[tuple, str]:
    """``{Change.key(): why}`` from the TOML list (``[[mutant]]`` tables with module,
    function, removed, added (a line or a list of lines) and why)."""
    out: dict[tuple, str] = {}
    for i, e in enumerate(tomllib.loads(path.read_text())["mutant"], 1):
        missing = {"module", "function", "removed", "added", "why"} - set(e)
        if missing:
            raise ValueError(f"{path}: mutant #{i}: missing {', '.join(sorted(missing))}")
        lines = [(e[k],) if isinstance(e[k], str) else tuple(e[k])
                 for k in ("removed", "added")]
        key = (e["module"], e["function"], tuple(map(_norm, lines[0])),
               tuple(map(_norm, lines[1])))
        if key in out:
            raise ValueError(f"{path}: mutant #{i} is listed twice")
        out[key] = e["why"]
    return out


DETECTED = ("killed", "timeout")
"""Statuses that count as caught: a mutant that makes the tests loop is caught too."""


def unresolved(results: str) -> list[tuple[str, str]]:
    """``(name, status)`` of each mutant ``mutmut results`` lists that the tests did not
    catch (survived, no tests, suspicious, ...)."""
    rows = [line.strip().rsplit(": ", 1) for line in results.splitlines() if line.strip()]
    return [(name, status) for name, status in rows if status not in DETECTED]


def main() -> int:
    _mutmut("export-cicd-stats")
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    ran = stats["total"] - stats["skipped"]
    killed = stats["killed"] + stats["timeout"]
    known = equivalents()
    new, matched = [], set()
    for name, status in unresolved(_mutmut("results")):
        diff = _mutmut("show", name)
        change = change_of(name, diff)
        if status == "survived" and change.key() in known:
            matched.add(change.key())
        else:
            new.append((name, status, diff))
    print(f"mutmut: {killed} of {ran} mutants killed ({100 * killed / max(ran, 1):.1f} %); "
          f"{stats['survived']} survived, {stats['no_tests']} reached by no test, "
          f"{stats['suspicious']} suspicious")
    print(f"equivalent (tests/mutation_equivalents.toml): {len(matched)}; counted as "
          f"killed or equivalent: {100 * (killed + len(matched)) / max(ran, 1):.1f} %")
    for name, status, diff in new:
        print(f"\n{name}: {status}, not listed as equivalent\n{diff.rstrip()}")
    ran_on = {".".join(p.relative_to("mutants").with_suffix("").with_suffix("").parts)
              for p in Path("mutants").rglob("*.py.meta")}  # the modules this run mutated
    stale = [k for k in known if k not in matched and k[0] in ran_on]
    for module, function, removed, added in stale:
        print(f"\nlisted as equivalent but not a survivor now: {module} {function}: "
              f"{' / '.join(removed)} -> {' / '.join(added)}")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
