"""The mutation-testing tools' own logic: how a survivor is matched with its entry in
tests/mutation_equivalents.toml, and that every entry still names code that exists."""

from __future__ import annotations

import importlib
import inspect

import pytest

from tests import mutation_report as mr

SHOW = '''# advisor.report.render.x_to_json__mutmut_4: survived
--- advisor/report/render.py
+++ advisor/report/render.py
@@ -1,3 +1,3 @@
 def to_json(report: Report) -> str:
     """The report as JSON (``report.schema.json``)."""
-    return json.dumps(report.to_dict(), indent=2,  sort_keys=False)
+    return json.dumps(report.to_dict(), indent=2, sort_keys=None)
'''


def test_a_survivor_is_keyed_by_module_function_and_lines():
    c = mr.change_of("advisor.report.render.x_to_json__mutmut_4", SHOW)
    assert c == mr.Change("advisor.report.render", "to_json",
                          ("return json.dumps(report.to_dict(), indent=2, sort_keys=False)",),
                          ("return json.dumps(report.to_dict(), indent=2, sort_keys=None)",))
    # a method, and a private function whose name has underscores of its own
    assert mr.change_of("advisor.cron.xǁSpecScheduleǁnext_unix__mutmut_12", "").function \
        == "SpecSchedule.next_unix"
    assert mr.change_of("advisor.store.x__fsync_dir__mutmut_3", "").function == "_fsync_dir"
    with pytest.raises(ValueError, match="unexpected mutant name"):
        mr.change_of("advisor.cron.parse", "")


def test_a_timed_out_mutant_counts_as_caught_not_as_a_survivor():
    """mutmut's score counts a timeout as killed (the mutant made the tests loop); the
    report asked for an equivalence entry for each one all the same."""
    results = """
    advisor.cron.x_parse__mutmut_1: killed
    advisor.cron.x_parse__mutmut_2: timeout
    advisor.cron.x_parse__mutmut_3: survived
    advisor.store.x_read__mutmut_4: no tests
    """
    assert mr.unresolved(results) == [("advisor.cron.x_parse__mutmut_3", "survived"),
                                      ("advisor.store.x_read__mutmut_4", "no tests")]


def test_the_equivalents_list_is_read_and_checked(tmp_path):
    p = tmp_path / "eq.toml"
    entry = ("[[mutant]]\nmodule = 'm'\nfunction = 'f'\nremoved = 'a  = 1'\n"
             "added = ['a = 2', 'b']\nwhy = 'w'\n")
    p.write_text(entry)
    assert mr.equivalents(p) == {("m", "f", ("a = 1",), ("a = 2", "b")): "w"}
    p.write_text(entry + entry)
    with pytest.raises(ValueError, match="listed twice"):
        mr.equivalents(p)
    p.write_text(entry.replace("why = 'w'\n", ""))
    with pytest.raises(ValueError, match="#1: missing why"):
        mr.equivalents(p)


def _function_source(module: str, function: str) -> str:
    obj = importlib.import_module(module)
    for part in function.split("."):
        obj = getattr(obj, part)
    return inspect.getsource(obj)


@pytest.mark.parametrize(("module", "function", "removed", "added", "why"), [
    (*k, w) for k, w in mr.equivalents().items()],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_each_listed_equivalent_still_names_a_line_of_its_function(module, function,
                                                                   removed, added, why):
    """An entry whose lines are no longer in the function is stale: the code moved on,
    and the reason may no longer hold."""
    source = [" ".join(line.split()) for line in
              _function_source(module, function).splitlines()]
    for line in removed:
        assert line in source, f"{module}.{function}: no line {line!r}"
    assert len(why) > 20, "say why no test can tell the mutant from the code"
    assert removed != added

