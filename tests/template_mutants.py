"""Mutation testing of the report's Jinja template, which mutmut does not mutate.

Usage::

    python tests/template_mutants.py [--jobs N] [--lines A-B] [--list] TESTS...
                                     [-- PYTEST ARGS...]

e.g. ``python tests/template_mutants.py tests/test_report_render.py``. Each mutant of
``advisor/report/templates/report.html.j2`` is one small change to one tag:

- ``{{ x }}``: ``| safe`` added (autoescaping off for it), or the output removed; each
  number filter (pct, num, dur, when) removed or swapped for another; ``join``'s
  separator changed or the join removed; a ``"%.Nf"`` format given one more digit; an
  ``or "default"`` removed;
- ``{% if c %}``: forced true, forced false;
- ``{% for x in xs %}``: given no item, only the first item, the items reversed;
- in any tag: a slice ``[:N]`` made ``[:N+1]``, an index ``[0]`` / ``[1]`` swapped, any
  other integer N made N+1, a comparison made strict or not (``>`` / ``>=``...), ``+`` and
  ``-`` swapped.

For each mutant the TESTS run (``python -m pytest -x -q``) against a temporary copy of
the ``advisor`` package holding the mutated template (``PYTHONPATH``: the copy, then the
repository for the tests; ``--import-mode=importlib`` so pytest does not put the
repository's own package first). A mutant is killed when the run fails, whatever the
failure, a template that no longer compiles included; it survives when the run passes.
Before the mutants, the unmutated template must pass and an emptied one must be killed
(else the tests do not read the copy: the run stops).

Some mutants cannot change what a reader sees; they are run like the others but not
scored, and listed apart with their reason:

- ``| safe`` after a number format (pct, pm, num, dur, when, format), a count (length) or on
  a string literal: the text is the advisor's own digits, signs, units or "n/a", with
  nothing to escape;
- the changes in :data:`EQUIVALENT`, each with why.

Prints one line per mutant as it finishes, then the score (killed / scored mutants)
and every surviving mutant (line, what changed). Exit status 0 when none survives.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = Path("advisor") / "report" / "templates" / "report.html.j2"

TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
FILTER = re.compile(r"\s*\|\s*(\w+)(\([^()]*\))?")
NUMBER_FILTERS = {"pct": "num", "num": "pct", "dur": "num", "when": "dur"}
"""Each number filter and the one it is swapped for."""
SAFE_BY_RULE = {"pct", "pm", "num", "dur", "when", "format", "length"}
"""Filters whose output has nothing to escape: ``| safe`` after them changes nothing."""

EQUIVALENT: dict[tuple[str, str], str] = {
    # (the tag as written, the tag mutated): why no test can tell them apart
    **{(f"{{{{ {e} }}}}", f"{{{{ ({e}) | safe }}}}"):
       "an int the advisor counts: nothing to escape"
       for e in ("s.volumes_at_risk", "s.volumes", "s.conflicts_observed",
                 "s.failed_backups", "s.backups_week", "j.volumes",
                 "v.observed_conflicts_week", "q.backups", "q.backups_censored",
                 "c.summary_now.volumes_at_risk", "c.summary_now.conflicts_observed")},
    ("{{ what }}", "{{ (what) | safe }}"):
        "a label written in the template itself (Newly at risk...): nothing to escape",
    ('{{ uri }}', '{{ (uri) | safe }}'):
        "a data: URI the renderer makes from base64 (A-Z a-z 0-9 + / =): nothing to escape",
}


@dataclass(frozen=True)
class Mutant:
    """One change to one tag of the template."""

    line: int
    kind: str
    before: str
    after: str
    source: str

    @property
    def change(self) -> str:
        return f"{self.before}  ->  {self.after or '(nothing)'}"

    def equivalent(self) -> str | None:
        """Why this mutant cannot change what a reader sees (None: it can)."""
        if self.kind == "safe":
            expr = self.before[2:-2].strip()
            filters = FILTER.findall(expr)
            if filters and filters[-1][0] in SAFE_BY_RULE:
                return f"| safe after | {filters[-1][0]}: a number, nothing to escape"
            if re.fullmatch(r'"[^"<>&\']*"', expr):
                return "| safe on a string literal without markup characters"
        return EQUIVALENT.get((self.before, self.after))


def _each(pattern: str, text: str, repl) -> list[str]:
    """``text`` with one match of ``pattern`` replaced by ``repl(match)``, for each match."""
    return [text[:m.start()] + repl(m) + text[m.end():] for m in re.finditer(pattern, text)]


COMPARISON = {">": ">=", ">=": ">", "<": "<=", "<=": "<", "==": "!=", "!=": "=="}


def _in_any_tag(tag: str) -> list[tuple[str, str]]:
    """Slices, indices, numbers, comparisons and + / -, in an output or a statement
    (never inside a string literal)."""
    # string literals blanked out (same length) so that nothing in them is matched
    code = re.sub(r'"[^"]*"', lambda m: '"' + "_" * (len(m[0]) - 2) + '"', tag)[2:-2]

    def each(pattern: str, repl) -> list[str]:
        return [tag[:2] + t[:m.start()] + repl(m) + t[m.end():] + tag[-2:]
                for t in [tag[2:-2]] for m in re.finditer(pattern, code)]

    out = [("slice", t) for t in each(r"\[:(\d+)\]", lambda m: f"[:{int(m[1]) + 1}]")]
    out += [("index", t) for t in each(r"\[([01])\]", lambda m: f"[{1 - int(m[1])}]")]
    out += [("number", t) for t in each(r"(?<![\w.\[:])(\d+)(?![\w.\]])",
                                        lambda m: str(int(m[1]) + 1))]
    out += [("comparison", t) for t in each(r"[<>]=?|[=!]=", lambda m: COMPARISON[m[0]])]
    out += [("arithmetic", t) for t in each(r"(?<= )[-+](?= )", lambda m: "+-"[m[0] == "+"])]
    return out


def _output(tag: str) -> list[tuple[str, str]]:
    """The mutants of an output ``{{ ... }}``: ``(kind, the tag mutated)``."""
    expr = tag[2:-2].strip()
    out = []
    if not re.search(r"\|\s*safe\b", expr):
        out.append(("safe", f"{{{{ ({expr}) | safe }}}}"))
    out.append(("removed", ""))
    for m in FILTER.finditer(tag):
        name, args = m[1], m[2] or ""
        if name in NUMBER_FILTERS:
            out.append(("filter", tag[:m.start()] + f" | {NUMBER_FILTERS[name]}{args}"
                        + tag[m.end():]))
            out.append(("filter", tag[:m.start()] + tag[m.end():]))
        elif name == "join":
            out.append(("filter", tag[:m.start()] + ' | join(",")' + tag[m.end():]))
            out.append(("filter", tag[:m.start()] + tag[m.end():]))
    out += [("format", t) for t in _each(r'"%\.(\d)f"', tag, lambda m: f'"%.{int(m[1]) + 1}f"')]
    out += [("default", t) for t in _each(r'\s+or\s+"[^"]*"', tag, lambda m: "")]
    return out + _in_any_tag(tag)


def _statement(tag: str) -> list[tuple[str, str]]:
    """The mutants of a statement ``{% ... %}``: ``(kind, the tag mutated)``."""
    body = tag[2:-2].strip()
    out = []
    if m := re.fullmatch(r"if\s+(.+)", body, re.S):
        out += [("if", "{% if true %}"), ("if", "{% if false %}")]
    elif m := re.fullmatch(r"for\s+(.+?)\s+in\s+(.+)", body, re.S):
        target, items = m[1], m[2]
        out += [("for", f"{{% for {target} in [] %}}"),
                ("for", f"{{% for {target} in (({items}) | list)[:1] %}}"),
                ("for", f"{{% for {target} in ({items}) | reverse %}}")]
    return out + _in_any_tag(tag)


def mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source``, in the order of the template."""
    out = []
    for m in TAG.finditer(source):
        tag = m[0]
        line = source.count("\n", 0, m.start()) + 1
        changes = _output(tag) if tag.startswith("{{") else _statement(tag)
        for kind, new in changes:
            out.append(Mutant(line, kind, tag, new, source[:m.start()] + new + source[m.end():]))
    return out


class Runner:
    """The tests, run against a copy of the package holding a given template."""

    def __init__(self, tests: list[str], pytest_args: list[str]):
        self.dir = Path(tempfile.mkdtemp(prefix="template-mutants-"))
        shutil.copytree(REPO / "advisor", self.dir / "advisor",
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.template = self.dir / TEMPLATE
        self.cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                    "--import-mode=importlib", *pytest_args,
                    *[str((Path.cwd() / t).resolve()) for t in tests]]
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(self.dir), str(REPO)])}

    def passes(self, source: str, timeout: float | None = None) -> bool:
        """Whether the tests pass with ``source`` as the template (a run that times out
        fails)."""
        self.template.write_text(source)
        try:
            done = subprocess.run(self.cmd, cwd=self.dir, env=self.env, timeout=timeout,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options, and pytest's own arguments (after ``--``)."""
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tests", nargs="+", help="pytest paths to run for each mutant")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    ap.add_argument("--lines", metavar="A-B",
                    help="only the mutants on these lines of the template (e.g. 99-115)")
    ap.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    return ap.parse_args(argv), extra


Outcome = tuple[Mutant, bool, str | None]  # the mutant, killed, why it is equivalent


def _run_all(runners: list[Runner], source: str, todo: list[Mutant]) -> list[Outcome] | None:
    """Each mutant's outcome, printed as it comes; None when the tests cannot judge the
    template (they fail on it as it is, or pass on an empty one)."""
    t0 = time.monotonic()
    if not runners[0].passes(source):
        print("the tests fail on the unmutated template: fix them first", file=sys.stderr)
        return None
    baseline = time.monotonic() - t0
    if runners[0].passes(""):
        print("the tests pass on an empty template: they do not read the copy",
              file=sys.stderr)
        return None
    timeout = 10 * baseline + 30
    print(f"{len(todo)} mutants; the tests take {baseline:.1f} s on the template as it is")
    free = list(runners)

    def run(m: Mutant) -> tuple[Mutant, bool]:
        runner = free.pop()
        try:
            return m, not runner.passes(m.source, timeout)
        finally:
            free.append(runner)

    out: list[Outcome] = []
    with ThreadPoolExecutor(len(runners)) as pool:
        for i, (m, dead) in enumerate(pool.map(run, todo), 1):
            eq = m.equivalent()
            out.append((m, dead, eq))
            state = "killed" if dead else "SURVIVED"
            print(f"[{i}/{len(todo)}] line {m.line}: {state}{' (equivalent)' if eq else ''}"
                  f"  {m.change}", flush=True)
    return out


def _summary(outcomes: list[Outcome], seconds: float) -> int:
    """Print the score, the equivalents and the survivors; 1 when any survived."""
    equivalent = [o for o in outcomes if o[2]]
    killed = [o for o in outcomes if not o[2] and o[1]]
    survived = [o for o in outcomes if not o[2] and not o[1]]
    scored = len(killed) + len(survived)
    print(f"\n{seconds:.0f} s; {len(outcomes)} mutants, {len(equivalent)} "
          f"equivalent (not scored)")
    print(f"score: {len(killed)}/{scored} killed = {100 * len(killed) / max(scored, 1):.1f} %")
    if equivalent:
        print("\nequivalent mutants:")
        for m, dead, eq in equivalent:
            note = "  (KILLED: not equivalent after all)" if dead else ""
            print(f"  line {m.line}: {m.change}\n      {eq}{note}")
    if survived:
        print("\nsurviving mutants:")
        for m, _, _ in survived:
            print(f"  line {m.line} ({m.kind}): {m.change}")
    return 1 if survived else 0


def main(argv: list[str] | None = None) -> int:
    args, extra = _arguments(sys.argv[1:] if argv is None else argv)
    source = (REPO / TEMPLATE).read_text()
    todo = mutants(source)
    if args.lines:
        first, _, last = args.lines.partition("-")
        todo = [m for m in todo if int(first) <= m.line <= int(last or first)]
    if args.list:
        for m in todo:
            eq = m.equivalent()
            print(f"{m.line:4d} {m.kind:10s} {m.change}" + (f"   [equivalent: {eq}]" if eq else ""))
        print(f"{len(todo)} mutants")
        return 0
    runners = [Runner(args.tests, extra) for _ in range(max(1, args.jobs))]
    t0 = time.monotonic()
    try:
        outcomes = _run_all(runners, source, todo)
    finally:
        for r in runners:
            r.close()
    return 2 if outcomes is None else _summary(outcomes, time.monotonic() - t0)


if __name__ == "__main__":
    sys.exit(main())
