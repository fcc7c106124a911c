"""Go's standard library as robfig/cron v3 calls it, ported exactly: ``strings.Fields``,
``strings.ToLower``, ``strconv.Atoi`` and ``time.ParseDuration`` (Go 1.19). Python's
own ``split``, ``lower`` and ``int`` differ at the edges (Unicode white space, U+0130,
signs, range), and a cron Longhorn accepts or refuses depends on Go's answer there."""

from __future__ import annotations

__all__ = ["GO_SPACE", "GO_SPACE_CHARS", "go_atoi", "go_fields", "go_lower",
           "go_parse_duration"]

GO_SPACE = set("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)}
GO_SPACE_CHARS = "".join(sorted(GO_SPACE))


def go_fields(s: str) -> list[str]:
    """``strings.Fields``: split around runs of Unicode white space (Go's set, not
    Python's, which also splits on the ASCII separators 0x1c-0x1f)."""
    out, cur = [], []
    for ch in s:
        if ch in GO_SPACE:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def go_lower(s: str) -> str:
    """``strings.ToLower`` (simple case mapping: U+0130 becomes a plain 'i')."""
    return "".join("i" if ch == "\u0130" else ch.lower() if len(ch.lower()) == 1 else ch
                   for ch in s)


def go_atoi(s: str) -> int:
    """``strconv.Atoi`` in base 10: an optional sign and ASCII digits, within int64."""
    digits = s[1:] if s[:1] in ("+", "-") else s
    if not digits or not all("0" <= c <= "9" for c in digits):
        raise ValueError(f'strconv.Atoi: parsing "{s}": invalid syntax')
    n = int(digits) * (-1 if s[0] == "-" else 1)
    if not -(2**63) <= n < 2**63:
        raise ValueError(f'strconv.Atoi: parsing "{s}": value out of range')
    return n


_UNITS = {b"ns": 1, b"us": 10**3, "µs".encode(): 10**3, "μs".encode(): 10**3,
          b"ms": 10**6, b"s": 10**9, b"m": 60 * 10**9, b"h": 3600 * 10**9}


def go_parse_duration(text: str) -> int:
    """``time.ParseDuration`` (Go 1.19): nanoseconds, or ValueError with Go's message.

    Go also guards each step against uint64 wrap-around; Python's ints do not wrap, so
    only the checks that decide the answer or the message are kept."""
    s = text.encode()
    invalid = ValueError(f'time: invalid duration "{text}"')
    neg = s[:1] == b"-"
    if s[:1] in (b"-", b"+"):
        s = s[1:]
    if s == b"0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        i, v = 0, 0
        while i < len(s) and 48 <= s[i] <= 57:
            v = v * 10 + s[i] - 48
            if v > 2**63:  # leadingInt's overflow: before the unit is read
                raise invalid
            i += 1
        pre, s = i > 0, s[i:]
        f, scale, post = 0, 1.0, False
        if s[:1] == b".":
            s = s[1:]
            i, overflow = 0, False
            while i < len(s) and 48 <= s[i] <= 57:
                if not overflow:  # leadingFraction drops the digits past 2**63
                    if f * 10 + s[i] - 48 > 2**63:
                        overflow = True
                    else:
                        f, scale = f * 10 + s[i] - 48, scale * 10
                i += 1
            post, s = i > 0, s[i:]
        if not pre and not post:  # also any text not starting with a digit or "."
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == 46 or 48 <= s[i] <= 57):
            i += 1
        if i == 0:
            raise ValueError(f'time: missing unit in duration "{text}"')
        unit_text, s = s[:i], s[i:]
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise ValueError(f'time: unknown unit "{unit_text.decode()}" in duration "{text}"')
        total += v * unit + int(float(f) * (float(unit) / scale))
        if total > 2**63:
            raise invalid
    if not neg and total > 2**63 - 1:
        raise invalid
    return -total if neg else total


# --- time zones and Go's calendar arithmetic -------------------------------------------
