"""advisor.cron against robfig/cron v3.0.1 itself, over thousands of generated cases.

The oracle (``tests/oracle``) is a small Go program around ``cron.ParseStandard`` and
``Schedule.Next``; it is built once per session from the Debian package
``golang-github-robfig-cron-dev`` (``make deps-test`` installs it and Go). All the cases
go to one oracle process as JSON lines. For each case (expression, start instant,
evaluation zone) the test compares whether robfig accepts the expression (a Go panic
counts as a rejection) with ``parse(expr, allow_tz_prefix=True)``, and, when both accept
it, the next five fire times, each found from the previous one (``None`` is Go's zero
time, and ends the series).

robfig's Next can loop forever (Pacific/Apia has no 30 December 2011, and time.Date
maps that day back to the 29th). The oracle reports a Next that has not returned after
2 s as a hang and is started again on the following cases; there, the Python side must
give the same times before it and then None (the controller never gets a fire time),
within the same 2 s: a Python series that takes longer (a hang, or a slow path) is a
mismatch too.

The cases are generated from a grammar with a fixed seed, so a failure reproduces;
``CRON_DIFF_SEED`` and ``CRON_DIFF_SCALE`` (a multiplier on the number of cases) explore
further. Without Go or the robfig source the test is skipped, except under ``CI=true``,
where that is a failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from advisor.cron import CronError, parse
from tests.conftest import Hang, missing_dependency, time_limit

ORACLE_SRC = Path(__file__).parent / "oracle"
ROBFIG_DIR = Path("/usr/share/gocode/src/github.com/robfig/cron")
SEED = int(os.environ.get("CRON_DIFF_SEED", "20240229"))
SCALE = float(os.environ.get("CRON_DIFF_SCALE", "1"))
N_NEXT = 5
SHOWN = 30
ORACLE_HUNG = 3  # the oracle's exit status after a Next that did not return
PY_HANG_S = 2.0  # the same limit for the Python side (a series takes milliseconds)
HANG = "<hang>"

# --- the oracle ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def cron_oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The robfig/cron oracle, built from a copy of tests/oracle (the tree is not
    written to)."""
    go = shutil.which("go")
    missing = [what for what, ok in (("the `go` command", go is not None),
                                     (f"the robfig/cron source {ROBFIG_DIR}",
                                      ROBFIG_DIR.is_dir())) if not ok]
    if missing:
        missing_dependency(f"robfig/cron oracle unavailable: {' and '.join(missing)} "
                           "missing (`make deps-test` installs golang-go and "
                           "golang-github-robfig-cron-dev)")
    work = tmp_path_factory.mktemp("cron-oracle")
    src = work / "src"
    src.mkdir()
    for name in ("go.mod", "main.go"):
        shutil.copy(ORACLE_SRC / name, src / name)
    if (ORACLE_SRC / "go.sum").exists():
        shutil.copy(ORACLE_SRC / "go.sum", src / "go.sum")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GO111MODULE": "on",
           "GOWORK": "off", "GOSUMDB": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    if "GOCACHE" not in env and not env.get("HOME"):
        env["GOCACHE"] = str(work / "gocache")
    binary = work / "oracle"
    proc = subprocess.run([go, "build", "-o", str(binary), "."], cwd=src, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"building the robfig/cron oracle failed:\n{proc.stdout}{proc.stderr}")
    return binary


def run_oracle(binary: Path, cases: list[Case]) -> tuple[list[dict], int]:
    """The oracle's answers, one per case, and how many processes it took: all the cases
    go to one process, started again only after a line on which robfig's Next hung."""
    lines = [json.dumps({"expr": c.expr, "start": c.start_text, "zone": c.zone,
                         "n": N_NEXT}) + "\n" for c in cases]
    env = {k: v for k, v in os.environ.items() if k != "ZONEINFO"}
    env["TZ"] = "UTC"  # time.Local: only reachable through TZ=Local, which ignores it
    answers: list[dict] = []
    runs = 0
    while len(answers) < len(cases):
        runs += 1
        proc = subprocess.run([str(binary)], input="".join(lines[len(answers):]),
                              capture_output=True, encoding="utf-8", env=env, timeout=600)
        # split on "\n" only: splitlines would also split at a U+0085 inside an answer
        got = [json.loads(line) for line in proc.stdout.split("\n") if line]
        hung = proc.returncode == ORACLE_HUNG and got and got[-1].get("hang")
        assert proc.returncode == 0 or hung, (
            f"oracle failed ({proc.returncode}): {proc.stderr}")
        assert got, f"the oracle answered nothing: {proc.stderr}"
        answers += got
    assert len(answers) == len(cases), (len(answers), len(cases))
    bad = [(c, a["input_error"]) for c, a in zip(cases, answers, strict=True)
           if a.get("input_error")]
    assert not bad, f"the oracle could not read {len(bad)} cases, e.g. {bad[:5]}"
    return answers, runs


# --- the grammar -----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    lo: int
    hi: int
    names: tuple[str, ...] = ()


MINUTE = Field(0, 59)
HOUR = Field(0, 23)
DOM = Field(1, 31)
MONTH = Field(1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                      "nov", "dec"))
DOW = Field(0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
FIELDS = (MINUTE, HOUR, DOM, MONTH, DOW)

JUNK_ATOMS = ("*-5", "5-*", "1-2-3", "1/2/3", "L", "5L", "LW", "15W", "W", "5#2", "#", "H",
              "H/5", "H(0-29)", "x", "1.5", "0x1", "1e1", "\u0663", "*/", "/5", "-", "-1",
              "1-", "--", "**", "*?", "?/", "-0", "0-0", "+", "1 ", "１", "January",
              "Sunday", "ja", "7", "*/-1", "2-1/0", "FRİ", "frı", "1_0", "9223372036854775807",
              "9223372036854775808", "18446744073709551616", "00000000000000000000000005")
SPACES_ODD = ("  ", "\t", " \t ", "\n", "\r\n", "\v", "\f", "\u00a0", "\u3000", "\x85",
              "\u2003", "\u2028", "\u1680", "\x1c", "\x1f", "\u200b", "\ufeff")
STEPS = ("1", "2", "3", "4", "5", "6", "7", "10", "12", "15", "20", "30", "45", "59", "60",
         "61", "0", "01", "+2", "-1", "", "x", "9223372036854775807")

DESCRIPTORS = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly",
               "@annually")
DESCRIPTORS_ODD = ("@Daily", "@HOURLY", "@Weekly", "@every", "@every ", "@reboot", "@",
                   "@yearly ", " @daily", "@daily\t", "@every1h", "@every\t1h", "@every  1h",
                   "@ daily", "@@daily", "@every 1h ", "@every 1h\u00a0", "@daily\u00a0")
DURATIONS = ("90m", "1h30m", "1.5h", "15s", "500ms", "-1h", "0", "+0", "-0", "1h", "24h",
             "168h", "1s", "999ms", "1001ms", "1.5s", "2.999999999s", "1us", "1µs", "1μs",
             "1ns", "1000000000ns", "abc", "1", "h", "1hh", "1H", "1d", "1w", ".5h", "1.h",
             ".h", "1e3s", "9223372036854775807ns", "9223372036854775808ns",
             "2562047h47m16.854775807s", "2562047h47m16.854775808s", "2562048h",
             "-2562047h", "1h-30m", "1h+30m", "0.000000001s", "3m0.5s", "1_000s", "01h",
             "00000000000000000000001s", "1.00000000000000000000001h", "0s", "0.0s", "-",
             "+", "", "1m1m1m", "59.9999999999s", "1.5ms", "0.5s", "1h0.5m",
             "12345678901234567890ns", "3h-", ".s", "1.2.3s", "1\u00a0h", "１h")
UNITS = ("ns", "us", "µs", "ms", "s", "m", "h")

ZONES_VALID = ("UTC", "", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
               "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham", "Etc/GMT+5",
               "Etc/GMT-14", "US/Eastern", "EST5EDT", "Zulu", "GMT", "Asia/Kathmandu",
               "Pacific/Apia", "Antarctica/Troll", "America/Havana", "Factory",
               "Europe/Dublin", "Asia/Tokyo")
ZONES_ODD = ("Local", "utc", "america/new_york", "Mars/Phobos", "+05:30", "UTC+05:00",
             "-08:00", "UTC-0800", "America/./New_York", "America//New_York", "./UTC",
             "America/New_York/", "America", "../zoneinfo/UTC", "/usr/share/zoneinfo/UTC",
             "\\UTC", "zone.tab", "localtime", "posixrules", "right/UTC",
             "posix/Europe/Berlin", "iso3166.tab", "Etc/GMT+15", "Europe/Berlin\u00a0",
             "Europe/Berlin\t", "America/New_York\x00")

# Evaluation zones (the CronJob's zone, or the controller's): DST rules of every kind.
EVAL_ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
              "America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham", "America/Havana",
              "Pacific/Apia", "Antarctica/Troll", "Europe/Dublin", "Africa/Casablanca",
              "America/St_Johns", "Asia/Kathmandu", "America/Santiago", "Asia/Tehran",
              "Australia/Sydney", "Asia/Gaza", "America/Asuncion")
DST_ZONES = tuple(z for z in EVAL_ZONES if z not in ("UTC", "Asia/Kolkata",
                                                      "Asia/Kathmandu"))

# Schedules whose fire times fall in or near the hours daylight saving moves.
DST_EXPRS = ("0 2 * * *", "30 2 * * *", "*/15 1-3 * * *", "0 0 * * *", "0 * * * *",
             "59 1 * * *", "0 3 * * 0", "30 1 * * *", "0 0 1 * *", "@daily", "@hourly",
             "@midnight", "@every 1h", "@every 30m", "*/30 * * * *", "15,45 1,2 * * *",
             "0 1 * * *", "0 23 * * *", "30 0 * * *", "0 0 * * 0", "0 0 1-7 * 0",
             "45 2 * * 6", "0 12 * * *", "* 2 * * *", "0 0,1,2,3 * * *", "0 4 * * *",
             "59 23 * * *", "0 0 */2 * *", "0 3 * 3,10,11 *", "0,30 0-4 * * 0",
             "TZ=America/Sao_Paulo 0 0 * * *", "CRON_TZ=Europe/Berlin 30 2 * * *",
             "TZ=Australia/Lord_Howe 15 2 * * *", "TZ=America/New_York 0 2 * * *",
             "TZ=Pacific/Apia 0 0 * * *", "TZ=America/Havana 0 0 * * *",
             "TZ=Antarctica/Troll 0 1-3 * * *", "0 0 31 12 *", "0 0 29 2 *")

# Written by hand: each one a rule robfig has, or a trap for a re-implementation.
EDGE_EXPRS = (
    "", " ", "*", "* * * *", "* * * * *", "* * * * * *", "0 0 * * 7", "0 0 * * 0-7",
    "0 0 * * 1-5/0", "0 0 * * */7", "*/0 * * * *", "5/1 * * * *", "60 * * * *",
    "0 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 0 *", "0 0 * 13 *", "0 0 * jAn *",
    "0 0 * * SUN", "0 0 * JAN-mar *", "0 0 * * mon-FRI", "0 0 * * FRİ", "0 0 * * fri-mon",
    "1, * * * *", ",5 * * * *", ", * * * *", "1,,2 * * * *", "+5 * * * *", "05 * * * *",
    "-0 * * * *", "*-5 * * * *", "*/5-7 * * * *", "?/5 ? ? ? ?", "0 0 ? * ?",
    "0 0 1 * 1", "0 0 */2 * 1", "0 0 1-31/2 * *", "0 0 * * */1", "0 0 */1 * 1",
    "0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 29 2 1", "0 0 L * *",
    "0 0 15W * *", "0 0 * * 5#3", "H * * * *", "0 0 * * 5L", "0 0\t* * *",
    "0  0 * * *", " 0 0 * * *", "0 0 * * * ", "0\u00a00 * * *", "0\u30000 * * *",
    "0\x1c0 * * *", "0\u200b0 * * *", "0 0 * * *\n", "TZ=UTC", "TZ=UTC ", "TZ= 0 0 * * *",
    "TZ=UTC 0 0 * * *", "CRON_TZ=UTC 0 0 * * *", "TZ=Local 0 0 * * *",
    "CRON_TZ=Local @daily", "TZ=UTC\t0 0 * * *", "TZ=UTC\t0 0 * * * 1",
    "TZ=+05:30 0 0 * * *", "TZ=UTC+05:00 0 0 * * *", "TZ=America/./New_York 0 0 * * *",
    "TZ=America//New_York 0 0 * * *", "TZ=./UTC @hourly", "TZ=utc 0 0 * * *",
    "TZ=Mars/Phobos 0 0 * * *", "TZ=../UTC 0 0 * * *", "TZ=/etc/localtime 0 0 * * *",
    "TZ=UTC \u00a0@daily", "TZ=UTC @daily\u00a0", "TZ=UTC @every 1h\u00a0",
    "TZ=UTC \x85@hourly", "TZ=UTC \u3000@weekly", "TZ=UTC @daily ", "TZ=UTC  @daily",
    "tz=UTC 0 0 * * *", " TZ=UTC 0 0 * * *", "TZ=UTC 0 0 * * *\u00a0", "CRON_TZ= @daily",
    "TZ=UTC CRON_TZ=UTC 0 0 * * *", "TZ=America/New_York TZ=UTC 0 0 * * *",
    "@every 90m", "@every 1h30m", "@every 1.5h", "@every 15s", "@every 500ms",
    "@every -1h", "@every 0", "@every junk", "@every 1d", "@Daily", "@daily", "@reboot",
)


def mixed_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def number(rng: random.Random, f: Field) -> str:
    r = rng.random()
    if r < 0.84:
        return str(rng.randint(f.lo, f.hi))
    if r < 0.90:
        return "0" * rng.randint(1, 3) + str(rng.randint(f.lo, f.hi))
    if r < 0.94:
        return "+" + str(rng.randint(f.lo, f.hi))
    if r < 0.96 and f.lo == 0:
        return "-0"
    if f is DOW and r < 0.98:
        return "7"
    return str(rng.choice((f.hi + 1, f.lo - 1, f.hi + 10, 99, 64, 2**63 - 1, 2**63)))


def value(rng: random.Random, f: Field) -> str:
    if f.names and rng.random() < 0.3:
        name = rng.choice(f.names)
        return mixed_case(rng, name) if rng.random() < 0.5 else rng.choice(
            (name, name.upper(), name.title()))
    return number(rng, f)


def ordered(rng: random.Random, f: Field) -> tuple[str, str]:
    a, b = sorted(rng.sample(range(f.lo, f.hi + 1), 2))
    if rng.random() < 0.1:
        a, b = b, a  # reversed: rejected
    if f.names and rng.random() < 0.3:
        return mixed_case(rng, f.names[a - f.lo]), mixed_case(rng, f.names[b - f.lo])
    return str(a), str(b)


def step(rng: random.Random) -> str:
    return rng.choice(STEPS) if rng.random() < 0.15 else rng.choice(STEPS[:14])


def atom(rng: random.Random, f: Field) -> str:
    r = rng.random()
    if r < 0.24:
        return "*"
    if r < 0.27:
        return "?"
    if r < 0.52:
        return value(rng, f)
    if r < 0.66:
        a, b = ordered(rng, f)
        return f"{a}-{b}"
    if r < 0.74:
        return f"{rng.choice('*?' if rng.random() < 0.2 else '*')}/{step(rng)}"
    if r < 0.82:
        return f"{value(rng, f)}/{step(rng)}"
    if r < 0.92:
        a, b = ordered(rng, f)
        return f"{a}-{b}/{step(rng)}"
    if r < 0.95:
        a = value(rng, f)
        return rng.choice((f"*-{a}", f"{a}-*", f"{a}-", f"-{a}", f"{a}--{a}",
                           f"{a}-{a}-{a}", f"{a}//2", f"{a}/2/2", f"{a}#2", f"{a}L",
                           f"{a}W"))
    return rng.choice(JUNK_ATOMS)


def field(rng: random.Random, f: Field) -> str:
    r = rng.random()
    if r < 0.86:
        return atom(rng, f)
    if r < 0.97:
        return ",".join(atom(rng, f) for _ in range(rng.randint(2, 4)))
    a = atom(rng, f)
    return rng.choice((f"{a},", f",{a}", f"{a},,{a}", ",", f"{a}, {a}"))


def separator(rng: random.Random) -> str:
    return rng.choice(SPACES_ODD) if rng.random() < 0.08 else " "


def fields_expr(rng: random.Random) -> str:
    parts = [field(rng, f) for f in FIELDS]
    r = rng.random()
    if r < 0.03:
        parts.append(field(rng, MINUTE))  # six fields
    elif r < 0.05:
        parts.pop(rng.randrange(len(parts)))  # four
    elif r < 0.06:
        parts = parts[:rng.randint(0, 3)] or [""]
    elif r < 0.07:
        parts += [field(rng, DOW), "*"]
    out = parts[0]
    for p in parts[1:]:
        out += separator(rng) + p
    if rng.random() < 0.04:
        out = rng.choice((*SPACES_ODD, " ")) + out
    if rng.random() < 0.04:
        out += rng.choice((*SPACES_ODD, " "))
    return out


def duration(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(DURATIONS)
    out = rng.choice(("", "", "", "-", "+"))
    for _ in range(rng.randint(1, 3)):
        whole = str(rng.choice((0, 1, 2, 5, 15, 30, 59, 60, 90, 100, 1500, 86400,
                                rng.randint(0, 10**6))))
        frac = rng.choice(("", "", "", ".5", ".25", ".999999999", ".0000000001",
                           ".123456789123"))
        out += whole + frac + rng.choice(UNITS)
    return out


def descriptor(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return rng.choice(DESCRIPTORS)
    if r < 0.45:
        return rng.choice(DESCRIPTORS_ODD)
    return "@every " + duration(rng)


def tz_expr(rng: random.Random) -> str:
    prefix = rng.choice(("TZ=", "CRON_TZ=")) if rng.random() < 0.95 else rng.choice(
        ("tz=", "Tz=", "CRON_TZ", "TZ", "TZ =", " TZ="))
    name = rng.choice(ZONES_VALID) if rng.random() < 0.75 else rng.choice(ZONES_ODD)
    sep = " " if rng.random() < 0.8 else rng.choice(
        ("  ", " \t", "\t", " \u00a0", "\u00a0 ", "", " \x85", " \u3000"))
    rest = fields_expr(rng) if rng.random() < 0.6 else descriptor(rng)
    if rng.random() < 0.03:
        rest += rng.choice(("\u00a0", "\u3000", "\x85", " ", "\t"))
    return prefix + name + sep + rest


def mutate(rng: random.Random, text: str) -> str:
    """A random insertion, deletion or replacement of one character."""
    junk = " \t*/,-?0123456789LW#H@=aZ\u00a0"
    i = rng.randint(0, len(text))
    r = rng.random()
    if r < 0.4 or not text:
        return text[:i] + rng.choice(junk) + text[i:]
    i = min(i, len(text) - 1)
    if r < 0.7:
        return text[:i] + text[i + 1:]
    return text[:i] + rng.choice(junk) + text[i + 1:]


def expression(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.70:
        return fields_expr(rng)
    if r < 0.82:
        return descriptor(rng)
    if r < 0.94:
        return tz_expr(rng)
    return mutate(rng, fields_expr(rng) if rng.random() < 0.7 else descriptor(rng))


# --- start times -----------------------------------------------------------------------

T_MIN = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
T_MAX = int(datetime(2036, 1, 1, tzinfo=UTC).timestamp())


def offset_at(zone: str, unix: int) -> int:
    off = datetime.fromtimestamp(unix, ZoneInfo(zone)).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def transitions(zone: str) -> list[tuple[int, int, int]]:
    """(instant, offset before, offset after) of each change of UTC offset, 2000-2035."""
    out = []
    step = 86400 // 2
    prev_t, prev_off = T_MIN, offset_at(zone, T_MIN)
    for t in range(T_MIN + step, T_MAX, step):
        off = offset_at(zone, t)
        if off != prev_off:
            lo, hi = prev_t, t  # the change is in (lo, hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(zone, mid) == prev_off:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, prev_off, off))
        prev_t, prev_off = t, off
    return out


@dataclass(frozen=True)
class Case:
    expr: str
    start: datetime
    start_text: str
    zone: str


def rfc3339(unix: int, micro: int, offset_s: int | None) -> tuple[datetime, str]:
    """The instant, and its RFC 3339 text written with a UTC offset (None: 'Z')."""
    tz = UTC if offset_s is None else timezone(timedelta(seconds=offset_s))
    dt = datetime.fromtimestamp(unix, tz).replace(microsecond=micro)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        text += f".{micro:06d}".rstrip("0")
    if offset_s is None:
        return dt, text + "Z"
    sign = "-" if offset_s < 0 else "+"
    h, m = divmod(abs(offset_s) // 60, 60)
    return dt, f"{text}{sign}{h:02d}:{m:02d}"


def micro(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.7:
        return 0
    return rng.choice((1, 500000, 999999, rng.randint(1, 999999)))


def random_start(rng: random.Random, zone: str) -> tuple[datetime, str]:
    unix = rng.randint(T_MIN, T_MAX)
    r = rng.random()
    offset = None if r < 0.4 else offset_at(zone, unix) if r < 0.8 else rng.choice(
        (0, 3600, -18000, 19800, 20700, 45900, -9000, 50400))
    return rfc3339(unix, micro(rng), offset)


# Around a change of offset: before it, on it, in the first hour after it (the wall
# clock's gap, or its repeated hour), the hour after.
AROUND = (-7200, -3601, -3600, -1800, -60, -1, 0, 1, 59, 60, 900, 1799, 1800, 1801, 3599,
          3600, 3601, 5400, 7200, 86399, -86400)


def dst_start(rng: random.Random, changes: list[tuple[int, int, int]]) -> tuple[datetime, str]:
    at, before, after = rng.choice(changes)
    unix = at + rng.choice(AROUND)
    r = rng.random()
    # Written with the offset before or after the change, a wall time in the gap or in
    # the repeated hour appears in the text: the instant is still exact.
    offset = None if r < 0.3 else before if r < 0.65 else after
    return rfc3339(unix, micro(rng), offset)


def dst_expr(rng: random.Random, zone: str, change: tuple[int, int, int]) -> tuple[str, str]:
    """A schedule aimed at one change of offset: its local hour, day, month, weekday.
    Returns it and the evaluation zone (another one when the zone is a TZ= prefix)."""
    at, before, _ = change
    wall = datetime.fromtimestamp(at - 1, timezone(timedelta(seconds=before)))
    h = wall.hour
    hour = rng.choice((str(h), str((h + 1) % 24), str((h + 2) % 24), f"{h}-{min(h + 2, 23)}",
                       f"{h},{(h + 1) % 24}", "*", f"*/{rng.choice((2, 3))}", "0"))
    minute = rng.choice(("0", "30", "45", "59", "15,45", "*/15", "*/30", "*", "0,30",
                         str(wall.minute), str(rng.randint(0, 59))))
    dom = rng.choice(("*", "*", str(wall.day), f"{wall.day}-{min(wall.day + 1, 31)}",
                      "*/2", "1", "?"))
    month = rng.choice(("*", "*", str(wall.month), f"{wall.month},{wall.month % 12 + 1}"))
    dow = rng.choice(("*", "*", "?", str((wall.weekday() + 1) % 7), "0", "1-5"))
    expr = f"{minute} {hour} {dom} {month} {dow}"
    if rng.random() < 0.2:
        return f"{rng.choice(('TZ=', 'CRON_TZ='))}{zone} {expr}", rng.choice(EVAL_ZONES)
    return expr, zone


def generate_cases() -> tuple[list[Case], int]:
    """The cases, and how many distinct expressions they hold."""
    rng = random.Random(SEED)
    cases: list[Case] = []

    def add(expr: str, zone: str, start: tuple[datetime, str]) -> None:
        cases.append(Case(expr, start[0], start[1], zone))

    # Hand-written edges, each from three starts and zones.
    for expr in EDGE_EXPRS:
        for _ in range(3):
            zone = rng.choice(EVAL_ZONES)
            add(expr, zone, random_start(rng, zone))
    # The grammar, each expression from two starts and zones.
    for _ in range(int(5200 * SCALE)):
        expr = expression(rng)
        for _ in range(2):
            zone = rng.choice(EVAL_ZONES)
            add(expr, zone, random_start(rng, zone))
    # Daylight saving: schedules near the moved hours, from starts around the changes.
    changes = {z: transitions(z) for z in DST_ZONES}
    changes = {z: c for z, c in changes.items() if c}
    for _ in range(int(4000 * SCALE)):
        zone = rng.choice(sorted(changes))
        expr = rng.choice(DST_EXPRS) if rng.random() < 0.6 else fields_expr(rng)
        add(expr, zone, dst_start(rng, changes[zone]))
    for _ in range(int(5000 * SCALE)):
        zone = rng.choice(sorted(changes))
        change = rng.choice(changes[zone])
        expr, eval_zone = dst_expr(rng, zone, change)
        add(expr, eval_zone, dst_start(rng, [change]))
    # Generated expressions, each evaluated from one start in each of a few DST zones.
    for _ in range(int(600 * SCALE)):
        expr = fields_expr(rng)
        for zone in rng.sample(sorted(changes), 3):
            add(expr, zone, dst_start(rng, changes[zone]))
    return cases, len({c.expr for c in cases})


# --- the Python side ------------------------------------------------------------------


def go_text(t: datetime | None) -> str:
    """A result as the oracle writes it: RFC3339Nano in UTC, '' for Go's zero time."""
    if t is None:
        return ""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass
class Outcome:
    valid: bool
    error: str
    next: list[str]


def python_outcome(case: Case, parsed: dict) -> Outcome:
    if case.expr not in parsed:
        try:
            parsed[case.expr] = parse(case.expr, allow_tz_prefix=True)
        except CronError as e:
            parsed[case.expr] = e
        except Exception as e:  # anything but CronError is itself a finding
            parsed[case.expr] = RuntimeError(f"raised {type(e).__name__}: {e}")
    sched = parsed[case.expr]
    if isinstance(sched, CronError):
        return Outcome(False, str(sched), [])
    if isinstance(sched, Exception):
        return Outcome(False, str(sched), ["<python raised>"])
    out: list[str] = []
    t: datetime | None = case.start
    try:
        with time_limit(PY_HANG_S):
            for _ in range(N_NEXT):
                t = sched.next(t, case.zone) if t is not None else None
                out.append(go_text(t))
    except Hang:
        out.append(HANG)
    except Exception as e:
        out.append(f"<next raised {type(e).__name__}: {e}>")
    return Outcome(True, "", out)


def go_outcome(answer: dict) -> Outcome:
    nxt = list(answer["next"])
    if answer.get("hang"):
        nxt.append(HANG)
    return Outcome(answer["valid"], answer["error"], nxt)


def compare(py: Outcome, go: Outcome) -> str | None:
    """The kind of disagreement, or None.

    Where robfig's Next never returns, the Python side must give the same times before
    it and then None (no fire time: the controller never gets one), not hang."""
    if py.valid != go.valid:
        return "python accepts, go rejects" if py.valid else "python rejects, go accepts"
    if not go.valid:
        return None
    if HANG in go.next:
        k = go.next.index(HANG)
        if py.next[:k] != go.next[:k]:
            return "different fire times (before a go hang)"
        if py.next[k:k + 1] == [HANG]:
            return "python hangs where go hangs (robfig's Next never returns)"
        if py.next[k:k + 1] != [""]:
            return "python gives a time where go hangs"
        return None
    if go.error:
        return "go panics in Next"
    if py.next != go.next:
        return (f"python takes over {PY_HANG_S:g} s (hangs or is slow)" if HANG in py.next
                else "different fire times")
    return None


def describe(case: Case, py: Outcome, go: Outcome) -> str:
    def side(o: Outcome) -> str:
        if not o.valid:
            return f"rejects ({o.error})" + (f" {o.next}" if o.next else "")
        return f"accepts, next {o.next}" + (f" [{o.error}]" if o.error else "")

    return (f"expr={case.expr!r} zone={case.zone} start={case.start_text}\n"
            f"      python: {side(py)}\n"
            f"      go:     {side(go)}")


def test_cron_matches_robfig(cron_oracle: Path, record_property) -> None:
    began = time.monotonic()
    cases, n_exprs = generate_cases()
    answers, runs = run_oracle(cron_oracle, cases)
    parsed: dict = {}
    mismatches: list[str] = []
    kinds: dict[str, set[str]] = {}
    n_valid = n_times = n_hangs = 0
    for case, answer in zip(cases, answers, strict=True):
        py, go = python_outcome(case, parsed), go_outcome(answer)
        if go.valid:
            n_valid += 1
            n_times += sum(t != HANG for t in go.next)
            n_hangs += HANG in go.next
        kind = compare(py, go)
        if kind is None:
            continue
        kinds.setdefault(kind, set()).add(case.expr)
        mismatches.append(f"[{kind}] " + describe(case, py, go))
    elapsed = time.monotonic() - began
    summary = (f"cron differential (seed {SEED}): {len(cases)} cases "
               f"(expression x start x zone), {n_exprs} distinct expressions, "
               f"{n_valid} cases accepted by robfig, {n_times} fire times compared, "
               f"{n_hangs} cases where robfig's Next hangs, {runs} oracle process(es), "
               f"{len(mismatches)} mismatches, {elapsed:.1f} s")
    print("\n" + summary)
    record_property("cron_differential_cases", len(cases))
    record_property("cron_differential_mismatches", len(mismatches))
    assert len(cases) >= 5000 * min(SCALE, 1), summary
    assert n_valid >= len(cases) // 3, f"too few valid expressions to compare: {summary}"
    if mismatches:
        by_kind = "\n".join(f"  {kind}: {len(exprs)} expressions"
                            for kind, exprs in sorted(kinds.items()))
        shown = "\n".join(f"  {i}. {m}" for i, m in enumerate(mismatches[:SHOWN], 1))
        pytest.fail(f"advisor.cron differs from robfig/cron v3.0.1.\n{summary}\n"
                    f"{by_kind}\nthe first {min(SHOWN, len(mismatches))}:\n{shown}",
                    pytrace=False)
