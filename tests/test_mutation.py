"""The mutation score table (gan/tools/mutation.py), read from a hand-made mutmut results folder: what counts
as killed, how a recheck overrides mutmut's verdict and stops doing so once mutmut has a new one."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("mutmut")

from gan.tools import mutation  # noqa: E402


def write_meta(root, module: str, codes: dict) -> None:
    path = root / (module.replace(".", "/") + ".py.meta")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes, "hash_by_function_name": {}}))


def test_scores_count_killed_and_timeouts_against_everything_a_test_could_have_killed(tmp_path):
    m = "gan.core.losses"
    write_meta(tmp_path, m, {f"{m}.x_f__mutmut_1": 1, f"{m}.x_f__mutmut_2": 1, f"{m}.x_f__mutmut_3": 36,
                             f"{m}.x_f__mutmut_4": 0, f"{m}.x_g__mutmut_1": 33, f"{m}.x_g__mutmut_2": None})
    (s,) = mutation.score_modules(mutation.read_results(tmp_path), [m])
    assert (s.total, s.killed, s.timeout, s.survived, s.no_tests, s.not_run) == (6, 2, 1, 1, 1, 1)
    assert s.score == pytest.approx(3 / 5)  # not-run mutants are not judged; untested code counts against
    assert s.low == pytest.approx(2 / 5)  # the timeout was not rechecked: it may be a survivor
    assert mutation.survivors(mutation.read_results(tmp_path)) == [f"{m}.x_f__mutmut_4", f"{m}.x_g__mutmut_1"]
    assert mutation.not_run(mutation.read_results(tmp_path)) == [f"{m}.x_g__mutmut_2"]  # what --not-run tests
    assert mutation.not_run(mutation.read_results(tmp_path), "gan.core.step") == []
    assert "| `gan.core.losses` | 6 | 2 | 1 (1) | 1 | 1 | 0 | 1 | 40%–60% ✗ |" in mutation.markdown_table([s])
    (s,) = mutation.score_modules(mutation.read_results(tmp_path), [m], rechecked={f"{m}.x_f__mutmut_3"})
    assert s.low == s.score and "| 2 | 1 (0) | 1 | 1 | 0 | 1 | 60% ✗ |" in mutation.markdown_table([s])


def test_a_recheck_overrides_mutmuts_verdict_until_mutmut_gives_another(tmp_path):
    m = "gan.workshop.auth"
    name = f"{m}.x_access__mutmut_7"
    write_meta(tmp_path, m, {name: 0})
    (tmp_path / "rechecked.json").write_text(json.dumps({name: [0, 1]}))  # survived in mutmut, killed alone
    assert mutation.read_results(tmp_path)[m][name] == 1
    write_meta(tmp_path, m, {name: 36})  # a later mutmut run: its verdict wins
    assert mutation.read_results(tmp_path)[m][name] == 36


def test_equivalent_mutants_leave_the_score(tmp_path, monkeypatch):
    m = "gan.workshop.auth"
    write_meta(tmp_path, m, {f"{m}.x_a__mutmut_1": 1, f"{m}.x_a__mutmut_2": 0})
    monkeypatch.setattr(mutation, "EQUIVALENT", {})
    monkeypatch.setitem(mutation.EQUIVALENT, f"{m}.x_a__mutmut_2", "same bytes either way")
    (s,) = mutation.score_modules(mutation.read_results(tmp_path), [m])
    assert (s.equivalent, s.score) == (1, 1.0)
    assert mutation.survivors(mutation.read_results(tmp_path)) == []
    monkeypatch.setitem(mutation.EQUIVALENT, f"{m}.x_gone__mutmut_1", "code that moved")
    assert mutation.stale_equivalents(mutation.read_results(tmp_path)) == [f"{m}.x_gone__mutmut_1"]


def test_the_configured_modules_are_the_ones_the_issue_names():
    assert set(mutation.configured_modules()) == {
        "gan.core.losses", "gan.core.step", "gan.store.checkpoint", "gan.store.autosave",
        "gan.engine.training_state", "gan.store.storage", "gan.engine.history", "gan.workshop.auth",
        "gan.workshop.runs", "gan.workshop.snapshots", "gan.workshop.transfer"}


def test_the_exit_code_table_agrees_with_mutmuts_own():
    """COUNTS is a copy (importing mutmut.__main__ sets the multiprocessing start method): read mutmut's
    table in a child process and check that every code means the same here."""
    out = subprocess.run([sys.executable, "-c", "import json; from mutmut.__main__ import status_by_exit_code as s; "
                          "print(json.dumps({str(k): v for k, v in s.items()}))"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    meaning = {"killed": "killed", "timeout": "timeout", "segfault": "timeout", "survived": "survived",
               "suspicious": "survived", "no tests": "no_tests", "not checked": "not_run", "skipped": "not_run",
               "check was interrupted by user": "not_run"}
    theirs = {(None if k == "None" else int(k)): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}
    assert {code: mutation.counted_as(code) for code in theirs} == {code: meaning[s] for code, s in theirs.items()}


def test_a_named_run_keeps_the_verdicts_of_the_mutants_it_did_not_name(tmp_path):
    m = "gan.core.step"
    write_meta(tmp_path, m, {f"{m}.x_f__mutmut_1": 1, f"{m}.x_f__mutmut_2": 0, f"{m}.x_f__mutmut_3": 36})
    before = mutation.read_raw_results(tmp_path)
    write_meta(tmp_path, m, {f"{m}.x_f__mutmut_1": None, f"{m}.x_f__mutmut_2": 1, f"{m}.x_f__mutmut_3": None})
    mutation.keep_results(before, tmp_path)  # mutmut ran only mutant 2 (now killed) and dropped the others
    assert mutation.read_raw_results(tmp_path)[m] == {f"{m}.x_f__mutmut_1": 1, f"{m}.x_f__mutmut_2": 1,
                                                      f"{m}.x_f__mutmut_3": 36}


def test_a_stopped_named_run_still_puts_back_the_verdicts_it_did_not_name_and_records_them(monkeypatch):
    """Ctrl-C or SIGTERM during `--not-run`/`--mutants`: mutmut has already reset the other verdicts, so the
    tool must put them back on its way out, not only after a run that finished, and write the record."""
    before = {"gan.core.step": {"gan.core.step.x_f__mutmut_1": 1}}
    kept, saved = [], []
    monkeypatch.setattr(mutation, "raw_and_rechecked", lambda mutants_dir=None, record=None: (before, {}))
    monkeypatch.setattr(mutation, "meta_texts", lambda: {"gan.core.step": "{}"})
    monkeypatch.setattr(mutation, "keep_results", lambda codes, texts: kept.append((codes, texts)))
    monkeypatch.setattr(mutation, "save_record", lambda results, rechecked: saved.append(results))

    def stopped(names, max_children):
        assert names == ["gan.core.step.x_f__mutmut_2"]
        raise KeyboardInterrupt

    monkeypatch.setattr(mutation, "run_mutmut", stopped)
    with pytest.raises(KeyboardInterrupt):
        mutation.main(["--mutants", "gan.core.step.x_f__mutmut_2"])
    assert kept == [(before, {"gan.core.step": "{}"})]
    assert saved == [before]


MODULE_SOURCE = """
def f(x):
    return x + 1


class Box:
    def put(self, x):
        return [x]
"""


def fake_repo(tmp_path, source=MODULE_SOURCE):
    (tmp_path / "repo/pkg").mkdir(parents=True, exist_ok=True)
    (tmp_path / "repo/pkg/mod.py").write_text(source)
    return tmp_path / "repo"


def test_the_record_brings_the_verdicts_to_a_fresh_clone_while_each_function_is_unchanged(tmp_path):
    """mutants/ does not outlive a machine: the record (in git) does. A verdict counts from it while its
    function's source is the one it was measured on; a changed function's mutants are simply not there."""
    repo, record, m = fake_repo(tmp_path), tmp_path / "record.json", "pkg.mod"
    codes = {f"{m}.x_f__mutmut_1": 1, f"{m}.x_f__mutmut_2": 0, f"{m}.x_f__mutmut_3": None,
             f"{m}.xǁBoxǁput__mutmut_1": 36}
    rechecked = {f"{m}.x_f__mutmut_2": [0, 1], f"{m}.x_gone__mutmut_1": [0, 1]}
    mutation.save_record({m: codes}, rechecked, path=record, repo=repo)
    assert mutation.read_record(record, repo) == ({m: codes}, {f"{m}.x_f__mutmut_2": [0, 1]})

    fake_repo(tmp_path, MODULE_SOURCE.replace("x + 1", "x + 2"))  # f changed since its run; Box.put did not
    assert mutation.read_record(record, repo) == ({m: {f"{m}.xǁBoxǁput__mutmut_1": 36}}, {})
    fake_repo(tmp_path, MODULE_SOURCE + "\n\ndef g():\n    return 0\n")  # code added elsewhere: f holds again
    assert mutation.read_record(record, repo)[0] == {m: codes}


def test_mutants_folder_wins_over_the_record_and_a_module_it_lacks_comes_from_the_record(tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "EQUIVALENT", {})
    repo, record, m = fake_repo(tmp_path), tmp_path / "record.json", "pkg.mod"
    mutation.save_record({m: {f"{m}.x_f__mutmut_1": 0}}, {f"{m}.x_f__mutmut_1": [0, 1]}, path=record, repo=repo)
    real = mutation.read_record
    monkeypatch.setattr(mutation, "read_record", lambda path: real(path, repo))  # the fake module's source
    mutants = tmp_path / "mutants"
    mutants.mkdir()
    assert mutation.read_results(mutants, record=record) == {m: {f"{m}.x_f__mutmut_1": 1}}  # rechecked: killed
    assert mutation.read_results(mutants) == {}  # without the record: nothing
    write_meta(mutants, "gan.core.step", {"gan.core.step.x_s__mutmut_1": 0})
    assert mutation.read_results(mutants, record=record) == {m: {f"{m}.x_f__mutmut_1": 1},
                                                            "gan.core.step": {"gan.core.step.x_s__mutmut_1": 0}}
    write_meta(mutants, m, {f"{m}.x_f__mutmut_1": 36})  # a run on this machine: its verdict wins
    assert mutation.read_results(mutants, record=record)[m] == {f"{m}.x_f__mutmut_1": 36}


def test_a_meta_file_mutmut_left_half_written_gets_its_text_from_before_the_run(tmp_path, capsys):
    """mutmut died mid-save (the disk was full): that module keeps its verdicts from before the run, and the
    other modules still get theirs back."""
    a, b = "gan.store.autosave", "gan.core.step"
    write_meta(tmp_path, a, {f"{a}.x_f__mutmut_1": 1})
    write_meta(tmp_path, b, {f"{b}.x_f__mutmut_1": 0})
    before, texts = mutation.read_raw_results(tmp_path), mutation.meta_texts(tmp_path)
    meta_a = tmp_path / "gan/store/autosave.py.meta"
    meta_a.write_text(meta_a.read_text()[:20])  # cut off mid-write
    write_meta(tmp_path, b, {f"{b}.x_f__mutmut_1": None})  # mutmut reset what it was not asked to run
    mutation.keep_results(before, tmp_path, texts=texts)
    assert mutation.read_raw_results(tmp_path) == {a: {f"{a}.x_f__mutmut_1": 1}, b: {f"{b}.x_f__mutmut_1": 0}}
    assert "autosave.py.meta was half-written" in capsys.readouterr().err


def test_the_committed_record_reads_back_for_the_configured_modules():
    """docs/mutation-results.json is what a fresh clone's `--report` prints: it must name only mutated
    modules, hold a digest and exit codes per function, and still match most of the code it was run on."""
    data = json.loads(mutation.RECORD.read_text())
    assert set(data["modules"]) <= set(mutation.configured_modules())
    for module, functions in data["modules"].items():
        for function, entry in functions.items():
            assert len(entry["source"]) == 16 and entry["codes"], (module, function)
            assert all(code is None or isinstance(code, int) for code in entry["codes"]), (module, function)
    results, _ = mutation.read_record()
    recorded = sum(len(entry["codes"]) for functions in data["modules"].values() for entry in functions.values())
    assert sum(len(codes) for codes in results.values()) > recorded / 2  # else: the code moved on, run it again


@pytest.mark.parametrize("text", ["{half", "[]", '{"modules": 3}'])
def test_a_damaged_record_is_a_clear_error(tmp_path, text):
    record = tmp_path / "mutation-results.json"
    record.write_text(text)
    with pytest.raises(SystemExit, match="not a mutation record"):
        mutation.read_record(record)
    with pytest.raises(SystemExit, match="not a mutation record"):
        mutation.save_record({}, {}, path=record)
    assert record.read_text() == text  # nothing overwritten
