"""Properties of the file source over generated input: nothing lost, nothing raised."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor import schema
from advisor.sources import synthetic as syn
from advisor.sources.files import load_files
from tests.conftest import T0

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                               max_size=5),
    max_leaves=30)

names = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True)
states = st.sampled_from(["Completed", "Error", "InProgress", "Pending", "", "Unknown"])


@st.composite
def backups(draw):
    state = draw(states)
    start = T0 + timedelta(seconds=draw(st.integers(0, 10**7)))
    seconds = draw(st.integers(0, 10**6))
    return syn.backup_cr(
        f"backup-{draw(names)}", draw(names), state=state, created=start, started=start,
        finished=start + timedelta(seconds=seconds), job=draw(st.sampled_from(["", "d"])),
        size_bytes=draw(st.integers(0, 2**50)),
        volume_size_bytes=draw(st.integers(0, 2**50))), state, seconds


def field_paths(obj: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in obj.items():  # keys such as "longhorn.io/volume-access-mode" hold dots
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += field_paths(v, (*prefix, k))
    return out


def mutate(obj: dict, path: tuple[str, ...], value: object) -> None:
    *parents, last = path
    for p in parents:
        obj = obj[p]
    if value is ...:
        del obj[last]
    else:
        obj[last] = value


@SETTINGS
@given(items=st.lists(json_values, max_size=8))
def test_every_item_of_a_list_is_read_or_reported(tmp_path, items):
    p = tmp_path / "l.json"
    p.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    r = load_files([p])
    assert sum(r.read.values()) + len(r.skipped) == len(items)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_file_gives_problems_not_exceptions(tmp_path, text):
    for suffix in (".json", ".yaml", ".csv"):
        p = tmp_path / f"t{suffix}"
        p.write_text(text)
        r = load_files([p])
        for name, df in r.frames.items():
            schema.validate(name, df)


@SETTINGS
@given(data=st.data(), junk=json_values)
def test_a_mutated_backup_is_kept_or_skipped_with_its_name(tmp_path, data, junk):
    cr, _, _ = data.draw(backups())
    path = data.draw(st.sampled_from(field_paths(cr)))
    mutate(cr, path, data.draw(st.sampled_from([..., junk])))
    p = tmp_path / "b.json"
    p.write_text(json.dumps(cr))
    r = load_files([p])
    schema.validate("backups", r.frames["backups"])
    assert len(r.frames["backups"]) + len(r.skipped) == 1
    for problem in r.problems:
        assert problem.file == str(p) and problem.object


@SETTINGS
@given(generated=st.lists(backups(), min_size=1, max_size=6,
                          unique_by=lambda b: b[0]["metadata"]["name"]))
def test_durations_and_censoring_survive_json_and_yaml(tmp_path, generated):
    doc = syn.kubectl_list([b for b, _, _ in generated])
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(doc))
    for name in ("a.json", "a.yaml"):
        r = load_files([tmp_path / name])
        assert not r.problems
        b = r.frames["backups"].set_index("backup")
        for cr, state, seconds in generated:
            row = b.loc[cr["metadata"]["name"]]
            if state == "Completed":
                assert row["duration_s"] == seconds and not row["censored"]
            else:
                assert pd.isna(row["duration_s"]) and row["censored"]
            assert row["size_bytes"] == (int(cr["status"]["size"]) if state == "Completed"
                                         else 0)
