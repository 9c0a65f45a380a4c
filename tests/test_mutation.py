"""tools/mutation.py, the thin wrapper over mutmut: the score table read from a hand-made mutants/ folder, the
watchdog that gives each running mutant its own time limit, the verdicts of modules a run did not test, and the
`# pragma: no mutate` lines in gan/ (each with its reason, each on a line mutmut mutates)."""

import importlib.util
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("mutation", ROOT / "tools" / "mutation.py")
mutation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutation)


def write_meta(root, module: str, codes: dict) -> None:
    path = root / (module.replace(".", "/") + ".py.meta")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes, "hash_by_function_name": {}}))


def test_the_score_counts_killed_and_timeouts_against_everything_a_test_could_have_killed(tmp_path):
    m = "gan.core.losses"
    write_meta(tmp_path, m, {f"{m}.x_f__mutmut_1": 1, f"{m}.x_f__mutmut_2": 1, f"{m}.x_f__mutmut_3": 36,
                             f"{m}.x_f__mutmut_4": 0, f"{m}.x_g__mutmut_1": 33, f"{m}.x_g__mutmut_2": None})
    results = mutation.read_results([m, "gan.core.step"], tmp_path)
    assert list(results) == [m]  # a module without a .meta has no verdicts yet
    (s,) = mutation.score_modules(results, [m], {m: 2})
    assert (s.total, s.killed, s.timeout, s.survived, s.no_tests, s.not_run) == (6, 2, 1, 1, 1, 1)
    assert s.score == pytest.approx(3 / 5)  # not-run mutants are not judged; untested code counts against
    assert mutation.survivors(results) == [f"{m}.x_f__mutmut_4", f"{m}.x_g__mutmut_1"]
    assert "| `gan.core.losses` | 6 | 2 | 1 | 1 | 1 | 1 | 2 | 60% ✗ |" in mutation.markdown_table([s])
    write_meta(tmp_path, m, {f"{m}.x_f__mutmut_1": 1, f"{m}.x_f__mutmut_2": 24, f"{m}.x_f__mutmut_3": 0})
    (s,) = mutation.score_modules(mutation.read_results([m], tmp_path), [m])
    assert s.score == pytest.approx(2 / 3) and "| 67% ✗ |" in mutation.markdown_table([s])
    write_meta(tmp_path, m, {f"{m}.x_f__mutmut_{i}": 1 for i in range(1, 8)} | {f"{m}.x_f__mutmut_8": 0})
    (s,) = mutation.score_modules(mutation.read_results([m], tmp_path), [m])
    assert s.score == pytest.approx(7 / 8) and mutation.markdown_table([s]).endswith("| 0 | 88% |")  # >= GOAL
    (s,) = mutation.score_modules({}, ["gan.core.step"])
    assert s.score is None and mutation.markdown_table([s]).endswith("| – |")


def test_an_unknown_exit_code_counts_as_a_survivor():
    assert mutation.counted_as(-9) == "survived"  # lowers the score instead of hiding


def test_the_exit_code_table_agrees_with_mutmuts_own():
    """COUNTS is a copy (importing mutmut.__main__ sets the multiprocessing start method): read mutmut's
    table in a child process and check that every code means the same here."""
    pytest.importorskip("mutmut")
    out = subprocess.run([sys.executable, "-c", "import json; from mutmut.__main__ import status_by_exit_code as s; "
                          "print(json.dumps({str(k): v for k, v in s.items()}))"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    meaning = {"killed": "killed", "timeout": "timeout", "segfault": "timeout", "survived": "survived",
               "suspicious": "survived", "no tests": "no_tests", "not checked": "not_run", "skipped": "not_run",
               "check was interrupted by user": "not_run"}
    theirs = {(None if k == "None" else int(k)): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
    assert {code: mutation.counted_as(code) for code in theirs} == {code: meaning[s] for code, s in theirs.items()}


def test_the_configured_modules_are_the_ones_whose_bugs_hurt_a_workshop_most():
    assert set(mutation.configured_modules()) == {
        "gan.core.losses", "gan.core.step", "gan.store.checkpoint", "gan.store.autosave",
        "gan.engine.training_state", "gan.store.storage", "gan.engine.history", "gan.workshop.auth",
        "gan.workshop.runs", "gan.workshop.snapshots", "gan.workshop.transfer"}


def test_each_running_mutant_is_held_to_its_own_time_limit_not_its_quickest_neighbours():
    """mutmut 3.3.1's watchdog (boxed/mutmut#518) held every running mutant of a file to each other mutant's
    limit in turn: a mutant without tests (15 s) set it for all. Here each pid has (its tests' time + 1) x 15 s."""
    now = datetime(2026, 12, 6, 12, 0, 0)
    slow_file = SimpleNamespace(start_time_by_pid={11: now - timedelta(seconds=100), 12: now - timedelta(seconds=40)},
                                estimated_time_of_tests_by_pid={11: 9.0, 12: 1.0})  # limits 150 s and 30 s
    quick_file = SimpleNamespace(start_time_by_pid={21: now - timedelta(seconds=16)},
                                 estimated_time_of_tests_by_pid={})  # no estimate: 15 s
    assert mutation.overdue([slow_file, quick_file], now) == [12, 21]
    assert mutation.overdue([slow_file], now - timedelta(seconds=20)) == []


def test_a_run_of_one_module_keeps_the_other_modules_verdicts_while_their_mutants_are_unchanged(tmp_path):
    """mutmut 3.3.1 resets every module's verdicts on each run; the wrapper puts back those of the modules it
    did not test, but only where mutmut made the very same mutants again (an edited module reads "not run")."""
    kept, edited = "gan.store.storage", "gan.core.losses"
    for module in (kept, edited):
        (tmp_path / (module.replace(".", "/") + ".py")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / (module.replace(".", "/") + ".py")).write_text(f"# the mutants of {module}\n")
        write_meta(tmp_path, module, {f"{module}.x_f__mutmut_1": 1})
    saved = mutation.saved_verdicts([kept, edited, "gan.core.step"], tmp_path)
    assert set(saved) == {kept, edited}  # gan.core.step has no mutants/ files yet
    for module in (kept, edited):  # the next run: mutmut makes the mutants again and resets their verdicts
        write_meta(tmp_path, module, {f"{module}.x_f__mutmut_1": None})
    (tmp_path / "gan/core/losses.py").write_text("# other mutants: the source was edited\n")
    assert mutation.restore_verdicts(saved, tmp_path) == [kept]
    assert mutation.read_results([kept, edited], tmp_path) == {kept: {f"{kept}.x_f__mutmut_1": 1},
                                                               edited: {f"{edited}.x_f__mutmut_1": None}}


def test_a_pragma_is_read_with_its_reason(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/mod.py").write_text("x = 1\ny = 2  # pragma: no mutate (y is never read)\n"
                                         "z = 3  # pragma: no mutate\n")
    assert mutation.pragma_lines("pkg.mod", tmp_path) == [(2, "y = 2  # pragma: no mutate (y is never read)",
                                                           "(y is never read)"), (3, "z = 3  # pragma: no mutate", "")]


def test_every_pragma_in_gan_gives_its_reason_on_a_mutated_module():
    """An equivalent mutant is marked where it is made: `# pragma: no mutate (why no test can tell)`. A pragma
    without a reason, or in a module mutmut does not mutate, is a mistake (the latter hides nothing, and misleads)."""
    mutated = set(mutation.configured_modules())
    bad = []
    for path in sorted((ROOT / "gan").rglob("*.py")):
        module = path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for number, line, reason in mutation.pragma_lines(module):
            if module not in mutated or not (reason.startswith("(") and reason.endswith(")") and len(reason) > 12):
                bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bad, "\n".join(bad)
    assert sum(len(mutation.pragma_lines(m)) for m in mutated) >= 20  # the equivalent mutants are marked
