"""`python -m gan.tools.mutation`: mutation testing (mutmut 3) of the code whose bugs hurt a workshop most,
and the score per module. Must not change what it measures: it runs mutmut, reads its results, prints.

Which code, which tests and which mutants are equivalent live in pyproject.toml's [tool.mutmut] (the
modules mutmut may mutate, the fast in-process tests it runs) and in EQUIVALENT below (mutants no test can
kill because the program behaves the same, each with its reason). A mutant is "killed" when a test fails
on it, "timeout" counts as killed (the mutant hangs a test: a user would notice), "survived" is a missing
test, "no tests" is code no selected test reaches.

    python -m gan.tools.mutation              # every module: about 1.5 hours on 2 laptop cores, then the recheck
    python -m gan.tools.mutation --module gan.core.losses --max-children 2
    python -m gan.tools.mutation --report     # the table of the last run, without running
    python -m gan.tools.mutation --survivors  # the names of the surviving mutants (`mutmut show NAME`)
    python -m gan.tools.mutation --retest-survivors  # after adding tests: only the survivors again
    python -m gan.tools.mutation --not-run --module gan.workshop.runs  # go on where a stopped run left off
    python -m gan.tools.mutation --mutants 'gan.engine.history.*_merge_pairs*'  # a changed function's mutants
    python -m gan.tools.mutation --recheck --recheck-minutes 30  # only the recheck, within a time budget

mutmut writes a copy of the code and its results under mutants/ (ignored by git), and forgets them on a new
machine. So every run also writes its verdicts to docs/mutation-results.json (in git), each function's with a
digest of its source: a fresh clone reports the table from it, and `--not-run` goes on from it, with the verdicts
of every function whose source has not changed since (a changed function's mutants read "not run" again).
"""

import argparse
import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut depends on `toml` there, which reads the same
    import toml as tomllib

REPO = Path(__file__).resolve().parents[2]
RECORD = REPO / "docs" / "mutation-results.json"  # the verdicts, kept in git: mutants/ does not outlive a machine
GOAL = 0.85  # the share of non-equivalent mutants each module's tests must kill

# mutmut 3.3.1's exit code of one mutant's test run (its status_by_exit_code) -> the ModuleScore field it counts
# in. Copied, not imported: importing mutmut.__main__ sets the process's multiprocessing start method. A mutant
# that makes a test hang or crash is one a user would notice: it counts with the killed ones.
COUNTS = {1: "killed", 3: "killed",  # a test failed; pytest's internal error
          -24: "timeout", 24: "timeout", 36: "timeout", 152: "timeout", 255: "timeout",  # over its time limit
          -11: "timeout",  # segfault
          0: "survived", 35: "survived",  # every test passed; "suspicious"
          5: "no_tests", 33: "no_tests",  # no test collected; no selected test calls the function
          None: "not_run", 2: "not_run", 34: "not_run"}  # not yet; interrupted; skipped


# Mutants that cannot change behaviour, so no test can kill them; each with the reason.
# Keys are mutmut's names (module.x_function__mutmut_N); a stale key (the code moved) is reported.
EQUIVALENT: dict[str, str] = {
    "gan.workshop.runs.x_int_from_env__mutmut_11": "minimum - 2 is below the minimum too: the same error",
    "gan.workshop.runs.xǁRunRegistryǁ__init____mutmut_70": '_current "" is falsy like None: no current run either way',
    "gan.engine.history.xǁHistoryǁ_cursor__mutmut_17": "no grid yet: -1 or -2, every grid step is >= 0 and newer",
    "gan.engine.history.xǁHistoryǁchanges_since__mutmut_15": "0 new events: the slice [len - 0:] is empty as well",
    "gan.workshop.snapshots.x_metrics_frame__mutmut_33": "pandas melt leaves the id column (step) out of value_vars",
    "gan.workshop.snapshots.x_metrics_frame__mutmut_34": "pandas melt leaves the id column (step) out of value_vars",
    "gan.workshop.snapshots.x_history_frame__mutmut_13": "the run column's place: every reader picks columns by name",
    # RunRegistry.continue_offer's cache key (folder, newest autosave's name, its mtime): autosaves are written newest
    # last, so the newest file's mtime changes with every one written whichever name sits beside it in the key
    "gan.workshop.runs.xǁRunRegistryǁcontinue_offer__mutmut_13": "the key's mtime of the newest file still changes",
    "gan.workshop.runs.xǁRunRegistryǁcontinue_offer__mutmut_14": "the key's mtime of the newest file still changes",
    "gan.workshop.runs.xǁRunRegistryǁcontinue_offer__mutmut_15": "no autosave: nothing is cached, the key is unused",
    "gan.workshop.runs.xǁRunRegistryǁcontinue_offer__mutmut_18": "no autosave: nothing is cached, the key is unused",
    "gan.workshop.runs.xǁRunRegistryǁcontinue_offer__mutmut_27":
        "root None is the run folder's parent (runs/live), and its autosaves lie inside both that and runs/",
    "gan.workshop.runs.xǁRunRegistryǁcontinue_offer__mutmut_29":
        "root left out is the run folder's parent (runs/live), and its autosaves lie inside both",
    "gan.workshop.snapshots.x_branch_state__mutmut_43":
        "a changed loss is checked by get_loss first; a kept one by the checkpoint's validation on load",
    "gan.workshop.snapshots.x_metrics_frame__mutmut_44": 'value_name="value" is pandas melt\'s default',
    "gan.workshop.snapshots.xǁSnapshotStoreǁ_remember__mutmut_4": "popitem(last=None): None is falsy, oldest first",
    "gan.workshop.snapshots.x_load_upload__mutmut_11": "device left out is auto: the CPU on a machine without a GPU",
    "gan.workshop.snapshots.xǁSnapshotStoreǁbranch__mutmut_14": "device left out is auto: the CPU without a GPU",
    "gan.workshop.auth.x_token_matches__mutmut_13": 'codec names ignore case: "UTF-8" is "utf-8"',
    "gan.workshop.auth.x_token_matches__mutmut_16": 'codec names ignore case: "UTF-8" is "utf-8"',
    # torch >= 2.6 loads with weights_only=True by default (the hostile-pickle tests catch False)
    "gan.store.checkpoint.x_load_checkpoint__mutmut_26": "weights_only=None is torch's default: True",
    "gan.store.checkpoint.x_load_checkpoint__mutmut_29": "weights_only left out is torch's default: True",
    # Without a GPU every tensor is saved on the CPU, so where it is mapped makes no difference here;
    # tests/test_cuda.py (every tensor of a GPU checkpoint loads on the CPU) kills these on a GPU machine.
    "gan.store.checkpoint.x_load_checkpoint__mutmut_25": "map_location=None: the same on a machine without a GPU",
    "gan.store.checkpoint.x_load_checkpoint__mutmut_28": "no map_location: the same on a machine without a GPU",
    # The step makes its noise where the data lives; without a GPU that is the CPU whatever the device says
    # (tests/test_cuda.py's trainer test runs the step on a GPU, where these fail).
    "gan.core.step.x_gan_step__mutmut_4": "device=None: the CPU, where the data is on a machine without a GPU",
    "gan.core.step.x_gan_step__mutmut_18": "device=None: the CPU, where the data is on a machine without a GPU",
    "gan.core.step.x_gan_step__mutmut_22": "no device: the CPU, where the data is on a machine without a GPU",
    "gan.engine.training_state.xǁTrainingStateǁload_state_dict__mutmut_25":
        ".to(None) leaves the noise on the CPU, where it is on a machine without a GPU",
    # _prune lists the run folder and deletes the oldest files in the same call, under the saver's lock: a file
    # can only be missing if another process deleted it in between, which no test can arrange without a race.
    "gan.store.autosave.xǁAutosaverǁ_prune__mutmut_14": "missing_ok=None: only a concurrent delete could tell",
    "gan.store.autosave.xǁAutosaverǁ_prune__mutmut_15": "missing_ok=False: only a concurrent delete could tell",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_4": "D.to(None) stays on the CPU, where the run is",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_30":
        "Generator(device=None) is a CPU generator, what the run uses on a machine without a GPU",
    # The batch stream's seed only has to be a fixed function of config.seed ("same seed, same run"); which
    # offset is arbitrary. +2 is also the fixed noise's seed, so the two streams start alike: no step, grid or
    # score a user sees can tell.
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_28": "seed - 1: another fixed stream, same seed same run",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_29": "seed + 2: another fixed stream, same seed same run",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_11":
        "the average is never in a loss (lerp_ under no_grad): a copy run outside no_grad would cost autograd "
        "bookkeeping, not draw differently",
    # zero_grad(set_to_none=False) zeroes the gradients instead of freeing them: the next backward writes
    # the same values either way; None only saves memory and an add.
    "gan.core.step.x_gan_step__mutmut_35": "set_to_none=None: zeroed grads, the same update",
    "gan.core.step.x_gan_step__mutmut_36": "set_to_none=False: zeroed grads, the same update",
    "gan.core.step.x_gan_step__mutmut_42": "set_to_none=None: zeroed grads, the same update",
    "gan.core.step.x_gan_step__mutmut_43": "set_to_none=False: zeroed grads, the same update",
    # G and D are required (checked just above), so the only key that can be absent is the last one:
    # stopping the loop there ("break") or going on ("continue") ends it the same way.
    "gan.store.checkpoint.x_validate_state__mutmut_49": "G_ema is the last key: break and continue both end the loop",
    # A SavedRun has no thread: its stop and forget take the Trainer's arguments and ignore them (its wait_until
    # is gan.engine.run.Waiting's, the one every kind of run shares).
    **{f"gan.store.autosave.xǁSavedRunǁ{name}": "a SavedRun has no thread: the argument is unused"
       for name in ("stop__mutmut_1", "stop__mutmut_2", "forget__mutmut_1")},
    "gan.workshop.runs.xǁRunRegistryǁreset__mutmut_9":
        'current is "" instead of None: both falsy, current() reads neither',
    # The default of next() is only reached when no line holds "GLOBAL", but that branch runs only when the
    # text holds it, so some line does.
    "gan.store.checkpoint.x_load_checkpoint__mutmut_40": "unreachable default: a line always holds GLOBAL here",
    "gan.store.checkpoint.x_load_checkpoint__mutmut_42": "unreachable default: a line always holds GLOBAL here",
    "gan.store.checkpoint.x_load_checkpoint__mutmut_46": "unreachable default: a line always holds GLOBAL here",
    "gan.store.storage.x_folder_bytes__mutmut_4": "followlinks=None is falsy: os.walk does not follow links",
    "gan.store.storage.x_folder_bytes__mutmut_6": "followlinks left out is os.walk's default: False",
    # The CSV and the Compare page's frames are built from the scalars and events only; with_grids=True
    # also copies the sample grids (a cost, not a different result) and None is falsy like False.
    "gan.workshop.transfer.x_history_csv__mutmut_1": "to_csv(index=None) is falsy: no index column, as False",
    "gan.workshop.transfer.x_history_csv__mutmut_2": "with_grids=None is falsy: the same snapshot",
    "gan.workshop.transfer.x_history_csv__mutmut_3": "with_grids=True: grids copied, the CSV has none",
    "gan.workshop.transfer.x_live_state__mutmut_2": "with_grids=None is falsy: the same snapshot",
    "gan.workshop.transfer.x_live_state__mutmut_3": "with_grids=True: grids copied, live_state reads none",
    "gan.store.autosave.x_every_s_from_env__mutmut_13": "-2.0 for an unreadable value is refused like -1.0, same text",
    # History.version and History.generation are only compared for a change (the dashboard's cache key, a
    # mirror's resync): any increase is as new as +1. tests/test_history.py checks that neither ever repeats.
    "gan.engine.history.xǁHistoryǁadd_event__mutmut_9": "version += 2: a new number all the same",
    "gan.engine.history.xǁHistoryǁset_probs__mutmut_4": "version += 2: a new number all the same",
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_224": "generation += 2: a new generation all the same",
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_227": "version += 2: a new number all the same",
    # A load starts a new generation, so a cursor from before it is never compared by its event count (the
    # mirror takes a full copy) and cursors after it start from whatever the count is then.
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_228": "the event count is only compared within a generation",
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_229": "the event count is only compared within a generation",
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_142": "-2 is below every step like -1 (steps start at 0)",
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_2": "itertuples(index=None) is falsy like False",
    "gan.engine.history.xǁHistoryǁload_state_dict__mutmut_6": "index=True adds an Index field the loader never reads",
    # The saved D(real)/D(fake) of a replay point are float32 values; read back without the dtype they are
    # float64 holding the same numbers, binned into the same histogram.
    **{f"gan.engine.history.xǁHistoryǁload_state_dict__mutmut_{n}": "float64 copies of float32 values: the same numbers"
       for n in (196, 198, 201, 203)},
    # find_interrupted: every run folder sits directly in root, so latest_valid's default root (the folder's
    # parent) is root itself; a folder without autosaves sorts below every real file time at 0.0 or 1.0; and
    # sorting the (time, folder, meta) tuples instead of by time alone differs only for two runs whose newest
    # autosaves have the very same modification time, to the nanosecond.
    "gan.store.autosave.x_find_interrupted__mutmut_60": "root None is the run folder's parent: root itself",
    "gan.store.autosave.x_find_interrupted__mutmut_62": "root left out is the run folder's parent: root itself",
    "gan.store.autosave.x_find_interrupted__mutmut_44": "0.0 or 1.0: below every real file time either way",
    "gan.store.autosave.x_find_interrupted__mutmut_48": "tuples sort by their time first: only an exact tie differs",
    "gan.store.autosave.x_find_interrupted__mutmut_51": "tuples sort by their time first: only an exact tie differs",
    # A history without sample grids saves an empty image tensor; loading reads it only at the index of a grid,
    # and there is none, so its dtype and its (empty) shape are never seen.
    **{f"gan.engine.history.xǁHistoryǁstate_dict__mutmut_{n}": "no grid: its empty image tensor is never read"
       for n in range(19, 29)},
    # Where the training state puts its models and its fixed noise: the CPU on a machine without a GPU whatever
    # the device says (tests/test_cuda.py runs it on a GPU).
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_3": "G.to(None) stays on the CPU, where the run is",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_33": "Generator(device=None) is a CPU generator",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_39": "the fixed noise .to(None) stays on the CPU",
    # The fixed noise's seed only has to be a fixed function of config.seed (tests/test_trainer.py: same seed,
    # same grid; another seed, another grid); which offset is arbitrary.
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_36": "seed - 2: another fixed noise, same seed same grid",
    "gan.engine.training_state.xǁTrainingStateǁattach__mutmut_37": "seed + 3: another fixed noise, same seed same grid",
    "gan.workshop.snapshots.xǁSnapshotStoreǁ__init____mutmut_1":
        "how many snapshots stay in memory: any other is read back from its file, the same state",
}


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    killed: int = 0
    timeout: int = 0
    survived: int = 0
    no_tests: int = 0
    equivalent: int = 0
    not_run: int = 0
    unchecked_timeouts: int = 0  # of `timeout`: mutmut's verdict, not yet confirmed by a recheck (see recheck())

    @property
    def judged(self) -> int:  # mutants a test could have killed
        return self.killed + self.timeout + self.survived + self.no_tests

    @property
    def score(self) -> float | None:
        return (self.killed + self.timeout) / self.judged if self.judged else None

    @property
    def low(self) -> float | None:
        """The score if every timeout not yet rechecked turned out a survivor."""
        return (self.killed + self.timeout - self.unchecked_timeouts) / self.judged if self.judged else None


def configured_modules(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The modules [tool.mutmut] mutates: every .py under paths_to_mutate not matched by do_not_mutate."""
    import fnmatch

    cfg = tomllib.loads(pyproject.read_text())["tool"]["mutmut"]
    modules = []
    for root in cfg["paths_to_mutate"]:
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if not any(fnmatch.fnmatch(rel, p) for p in cfg.get("do_not_mutate", [])):
                modules.append(rel[:-3].replace("/", "."))
    return modules


def _metas(mutants_dir: Path):
    """(module name, .meta file) for each mutated module mutmut has written results for."""
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        yield meta.relative_to(mutants_dir).as_posix()[: -len(".py.meta")].replace("/", "."), meta


def read_raw_results(mutants_dir: Path = REPO / "mutants") -> dict[str, dict[str, int | None]]:
    """module -> {mutant name: mutmut's exit code, or None (not run yet)}, from its .meta files."""
    return {module: json.loads(meta.read_text()).get("exit_code_by_key", {}) for module, meta in _metas(mutants_dir)}


def meta_texts(mutants_dir: Path = REPO / "mutants") -> dict[str, str]:
    """module -> its .meta file's text: what keep_results puts back when mutmut left a file half-written."""
    return {module: meta.read_text() for module, meta in _metas(mutants_dir)}


def read_rechecked(mutants_dir: Path = REPO / "mutants") -> dict[str, list]:
    """mutant name -> [mutmut's verdict, the recheck's] (see recheck())."""
    path = mutants_dir / "rechecked.json"
    return json.loads(path.read_text()) if path.exists() else {}


def raw_and_rechecked(mutants_dir: Path = REPO / "mutants",
                      record: Path | None = None) -> tuple[dict[str, dict[str, int | None]], dict[str, list]]:
    """mutmut's verdicts and the rechecks, from mutants/; with ``record``, a module mutants/ does not hold
    (a fresh clone) comes from the record instead."""
    raw, rechecked = read_raw_results(mutants_dir), read_rechecked(mutants_dir)
    if record is not None:
        recorded, recorded_checks = read_record(record)
        raw = {**{m: codes for m, codes in recorded.items() if m not in raw}, **raw}
        rechecked = {**recorded_checks, **rechecked}  # a recheck counts only while mutmut's verdict is the one it had
    return raw, rechecked


def read_results(mutants_dir: Path = REPO / "mutants", record: Path | None = None) -> dict[str, dict[str, int | None]]:
    """mutmut's verdicts with the rechecked ones in place of them: a recheck stands while mutmut's own
    verdict is the one it rechecked; a later mutmut run wins."""
    raw, rechecked = raw_and_rechecked(mutants_dir, record)
    return {module: {name: rechecked[name][1] if rechecked.get(name, (None,))[0] == code is not None else code
                     for name, code in codes.items()}
            for module, codes in raw.items()}


def function_digests(module: str, repo: Path = REPO) -> dict[str, str]:
    """mutmut's name of each function of a module (``x_f``, or ``xǁClassǁmethod`` for a method) -> a digest of
    its source: a recorded verdict stands while its function's source is the same."""
    path = repo / (module.replace(".", "/") + ".py")
    if not path.exists():
        return {}
    source = path.read_text()
    digests = {}

    def digest(node) -> str:
        return hashlib.sha256(ast.get_source_segment(source, node).encode()).hexdigest()[:16]

    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            digests[f"x_{node.name}"] = digest(node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    digests[f"xǁ{node.name}ǁ{item.name}"] = digest(item)
    return digests


def _split(name: str) -> tuple[str, str, int]:
    """'gan.core.step.x_gan_step__mutmut_4' -> ('gan.core.step', 'x_gan_step', 4)."""
    head, number = name.rsplit("__mutmut_", 1)
    module, function = head.rsplit(".", 1)
    return module, function, int(number)


def _load_record(path: Path) -> dict:
    """The record's data; a damaged file (a bad merge, a hand edit) is a clear error, not a traceback."""
    try:
        data = json.loads(path.read_text())
        if not isinstance(data.get("modules"), dict):
            raise ValueError("no 'modules' table")
        return data
    except (ValueError, AttributeError) as exc:
        raise SystemExit(f"{path}: not a mutation record ({exc}); `git checkout {path.name}` restores it") from exc


def save_record(results: dict[str, dict[str, int | None]], rechecked: dict[str, list],
                path: Path = RECORD, repo: Path = REPO) -> None:
    """Write the verdicts to the record: per module, per function, its source digest and its mutants'
    exit codes in mutmut's order (mutant N at place N - 1). A module the results do not hold keeps its
    recorded entry; a function whose source is gone is dropped."""
    old = _load_record(path)["modules"] if path.exists() else {}
    modules = {}
    for module in sorted(set(old) | set(results)):
        if module not in results:
            modules[module] = old[module]
            continue
        digests, functions = function_digests(module, repo), {}
        for name, code in sorted(results[module].items(), key=lambda kv: _split(kv[0])[1:]):
            _, function, number = _split(name)
            if function in digests:
                codes = functions.setdefault(function, {"source": digests[function], "codes": []})["codes"]
                codes.extend([None] * (number - len(codes)))
                codes[number - 1] = code
        modules[module] = functions
    known = {f"{m}.{f}" for m, functions in modules.items() for f in functions}
    rechecked = {name: v for name, v in sorted(rechecked.items()) if name.partition("__mutmut_")[0] in known}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"mutmut": "3.3.1", "modules": modules, "rechecked": rechecked}, indent=1, ensure_ascii=False)
    path.write_text(text + "\n")


def read_record(path: Path = RECORD, repo: Path = REPO) -> tuple[dict[str, dict[str, int | None]], dict[str, list]]:
    """The recorded verdicts that still hold: (module -> {mutant: exit code}, rechecked) for every function
    whose source has the digest it had when its mutants ran."""
    if not path.exists():
        return {}, {}
    data = _load_record(path)
    results = {}
    for module, functions in data["modules"].items():
        digests = function_digests(module, repo)
        codes = {f"{module}.{function}__mutmut_{i}": code
                 for function, entry in functions.items() if digests.get(function) == entry["source"]
                 for i, code in enumerate(entry["codes"], start=1)}
        if codes:
            results[module] = codes
    known = {name for codes in results.values() for name in codes}
    return results, {name: v for name, v in data.get("rechecked", {}).items() if name in known}


def counted_as(code: int | None) -> str:
    """The ModuleScore field one mutant's exit code counts in; an unknown code counts as survived, so it
    lowers the score instead of hiding."""
    return COUNTS.get(code, "survived")


def score_modules(results: dict[str, dict[str, int | None]], modules: list[str],
                  rechecked: set[str] = frozenset()) -> list[ModuleScore]:
    scores = []
    for module in modules:
        s = ModuleScore(module)
        for name, code in results.get(module, {}).items():
            s.total += 1
            field = "equivalent" if name in EQUIVALENT else counted_as(code)
            setattr(s, field, getattr(s, field) + 1)
            s.unchecked_timeouts += field == "timeout" and name not in rechecked
        scores.append(s)
    return scores


def survivors(results: dict[str, dict[str, int | None]], module: str | None = None) -> list[str]:
    return sorted(name for mod, codes in results.items() if module in (None, mod)
                  for name, code in codes.items()
                  if name not in EQUIVALENT and counted_as(code) in ("survived", "no_tests"))


def not_run(results: dict[str, dict[str, int | None]], module: str | None = None) -> list[str]:
    return sorted(name for mod, codes in results.items() if module in (None, mod)
                  for name, code in codes.items() if name not in EQUIVALENT and counted_as(code) == "not_run")


def stale_equivalents(results: dict[str, dict[str, int | None]]) -> list[str]:
    """EQUIVALENT names without a verdict in a module that has verdicts: the code moved (or, read from the
    record, the function changed since its run)."""
    known = {name for codes in results.values() for name in codes}
    return sorted(name for name in set(EQUIVALENT) - known if _split(name)[0] in results)


def markdown_table(scores: list[ModuleScore]) -> str:
    lines = ["| Module | Mutants | Killed | Timeout (not rechecked) | Survived | No test | Equivalent | Not run "
             "| Score |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in scores:
        if s.score is None:
            score = "–"
        else:  # a range while some timeouts are unconfirmed: as survivors … as kills
            score = f"{s.score:.0%}" if s.low == s.score else f"{s.low:.0%}–{s.score:.0%}"
            score += "" if s.low >= GOAL else (" ✗" if s.score < GOAL else " ?")
        lines.append(f"| `{s.module}` | {s.total} | {s.killed} | {s.timeout} ({s.unchecked_timeouts}) | {s.survived} "
                     f"| {s.no_tests} | {s.equivalent} | {s.not_run} | {score} |")
    return "\n".join(lines)


# mutmut 3.3.1 is run through this launcher, not `python -m mutmut` (its trampolines import mutmut.__main__
# a second time, which sets the multiprocessing start method twice and fails) and not in this process (this
# process has imported `gan` from the repository; the tests must import the mutated copy under mutants/).
# One fix to mutmut on the way: it records each test's duration from the last phase pytest reports
# (teardown, milliseconds), so its time limits cut off slow tests on surviving mutants and call them
# "timeout". The launcher records setup + call + teardown; timeouts and survivors are rechecked (recheck()).
# A second fix: mutmut's watchdog thread compares every running mutant of a file with the time limit of each
# mutant of that file in turn, so the file's quickest function sets the limit for all of them and a slow
# function's mutants are killed as "timeouts" while their tests still pass. The launcher's watchdog gives
# each running mutant its own limit, the one mutmut computed for it: (its tests' duration + 1) x 15 s.
LAUNCHER = """
import os
import signal
import sys
from datetime import datetime
from time import sleep

import mutmut
import mutmut.__main__ as mm

def per_mutant_timeout_checker(mutants):
    files = list({id(m): m for m, _, _ in mutants}.values())

    def watch():
        while True:
            sleep(1)
            now = datetime.now()
            for m in files:
                with mm.START_TIMES_BY_PID_LOCK:
                    started = dict(m.start_time_by_pid)
                for pid, start in started.items():
                    limit = (m.estimated_time_of_tests_by_pid.get(pid, 0.0) + 1) * 15
                    if (now - start).total_seconds() > limit:
                        try:
                            os.kill(pid, signal.SIGXCPU)
                        except ProcessLookupError:
                            pass
    return watch

mm.timeout_checker = per_mutant_timeout_checker

class PhaseSummingRunner(mm.PytestRunner):
    def run_stats(self, *, tests):
        class StatsCollector:
            def pytest_runtest_teardown(self, item, nextitem):
                test = mm.strip_prefix(item._nodeid, prefix='mutants/')
                for function in mutmut._stats:
                    mutmut.tests_by_mangled_function_name[function].add(test)
                mutmut._stats.clear()

            def pytest_runtest_makereport(self, item, call):
                if call.when == 'setup':
                    mutmut.duration_by_test[item.nodeid] = 0.0
                mutmut.duration_by_test[item.nodeid] = mutmut.duration_by_test.get(item.nodeid, 0.0) + call.duration

        args = ['-x', '-q'] + (list(tests) or list(mutmut.config.tests_dir))
        with mm.change_cwd('mutants'):
            return int(self.execute_pytest(args, plugins=[StatsCollector()]))

mm.PytestRunner = PhaseSummingRunner
mm.cli(sys.argv[1:])
"""


def run_mutmut(names: list[str], max_children: int) -> int:
    """Run mutmut from the repository root (it reads pyproject.toml there); only the mutants ``names``
    (globs such as ``gan.core.losses.*``) when given, and those again even if they have a result."""
    cmd = [sys.executable, "-c", LAUNCHER, "run", "--max-children", str(max_children), *names]
    # Its own process group: on a stop, mutmut and the test runs it forked are stopped together.
    child = subprocess.Popen(cmd, cwd=REPO, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (main makes it one): mutmut has saved each verdict as it came
        os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        raise


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def keep_results(before: dict[str, dict[str, int | None]], mutants_dir: Path = REPO / "mutants",
                 texts: dict[str, str] | None = None) -> None:
    """Put back the verdicts a named run (`mutmut run NAMES`) dropped: mutmut 3.3.1 rewrites each file's
    results with only the named mutants' verdicts, so the rest read "not run" afterwards. A file mutmut left
    half-written (it died mid-save: a full disk, a kill) gets its text from before the run (``texts``)."""
    for module, meta in _metas(mutants_dir):
        try:
            data = json.loads(meta.read_text())
        except ValueError:  # not JSON (json.JSONDecodeError and UnicodeDecodeError are both ValueErrors)
            if texts and module in texts:
                meta.write_text(texts[module])
                print(f"mutants/{meta.relative_to(mutants_dir)} was half-written: put back as it was before this run "
                      "(this run's verdicts for it are lost)", file=sys.stderr)
            continue
        codes = data.get("exit_code_by_key", {})
        old = before.get(module, {})
        restored = {name: old[name] if code is None and old.get(name) is not None else code
                    for name, code in codes.items()}
        if restored != codes:
            data["exit_code_by_key"] = restored
            meta.write_text(json.dumps(data, indent=4))


def forget_rechecks(names: list[str], mutants_dir: Path = REPO / "mutants", record: Path | None = None) -> None:
    """Before survivors are tested again: their earlier rechecks must not speak for them (in mutants/ and the
    record)."""
    done = read_rechecked(mutants_dir)
    if done:
        (mutants_dir / "rechecked.json").write_text(
            json.dumps({k: v for k, v in done.items() if k not in set(names)}, indent=1))
    if record is not None and record.exists():
        data = json.loads(record.read_text())
        data["rechecked"] = {k: v for k, v in data.get("rechecked", {}).items() if k not in set(names)}
        record.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _recheck_one(name: str, tests: list[str], limit_s: float, mutants_dir: Path) -> int:
    env = dict(os.environ, MUTANT_UNDER_TEST=name, PY_IGNORE_IMPORTMISMATCH="1")
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        rc = subprocess.run(cmd, cwd=mutants_dir, env=env, capture_output=True, timeout=limit_s).returncode
    except subprocess.TimeoutExpired:
        return 36  # still hangs on its own: a real timeout
    return 0 if rc == 0 else 1


def recheck(results: dict[str, dict[str, int | None]], limit_s: float = 900.0, workers: int = 2,
            mutants_dir: Path = REPO / "mutants", budget_s: float | None = None,
            record: Path | None = None) -> dict[str, int]:
    """Run every mutant mutmut did not count as killed again, alone, its tests in a fresh pytest process
    (what a developer's `pytest` does), with a generous wall-clock limit: 0 (survived), 1 (killed) or 36
    (still hangs). Two of mutmut's verdicts are not to be trusted as they stand: its time limit compares
    each mutant with the fastest function's tests in the same file, so a slow but passing run is called
    a timeout; and its forked test runs share one process's state, so a mutant can "survive" a test that
    fails on it in a fresh process. Kept in mutants/rechecked.json; read_results prefers them."""
    from concurrent.futures import ThreadPoolExecutor

    stats = json.loads((mutants_dir / "mutmut-stats.json").read_text())
    durations, stats = stats["duration_by_test"], stats["tests_by_mangled_function_name"]
    done_path = mutants_dir / "rechecked.json"
    done = raw_and_rechecked(mutants_dir, record)[1]  # the record's too: a fresh clone does not recheck them again
    todo = {name: code for codes in results.values() for name, code in codes.items()
            if name not in done and name not in EQUIVALENT and counted_as(code) in ("timeout", "survived")}

    def tests_of(name: str) -> list[str]:
        return sorted(stats.get(name.rsplit("__mutmut_", 1)[0], []), key=lambda t: durations.get(t, 0.0))

    # Survivors first (each may be a missing test), then timeouts; the quickest test lists first.
    order = sorted(todo, key=lambda n: (counted_as(todo[n]) != "survived", sum(durations.get(t, 0.0)
                                                                               for t in tests_of(n))))
    deadline = None if budget_s is None else time.monotonic() + budget_s
    with ThreadPoolExecutor(workers) as pool:
        def run_one(name: str) -> int | None:
            if deadline is not None and time.monotonic() > deadline:
                return None  # out of time: stays unchecked
            return _recheck_one(name, tests_of(name), limit_s, mutants_dir)

        jobs = {pool.submit(run_one, name): name for name in order}
        for job in jobs:
            name, verdict = jobs[job], job.result()
            if verdict is None:
                continue
            done[name] = [todo[name], verdict]  # [mutmut's verdict, the recheck's]
            print(f"rechecked {name}: {counted_as(todo[name])} -> {counted_as(verdict)}", flush=True)
            done_path.write_text(json.dumps(done, indent=1))
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan.tools.mutation", description=__doc__.split("\n")[0])
    p.add_argument("--module", action="append", help="only this module, e.g. gan.core.losses (repeatable)")
    p.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    p.add_argument("--report", action="store_true", help="print the last run's table without running")
    p.add_argument("--survivors", action="store_true", help="list surviving mutants instead of the table")
    p.add_argument("--retest-survivors", action="store_true",
                   help="test the survivors again (after adding tests): mutmut, then the recheck")
    p.add_argument("--not-run", action="store_true",
                   help="test only the mutants no run has reached yet (go on after a stopped run)")
    p.add_argument("--mutants", action="append", metavar="PATTERN",
                   help="test only these mutants, mutmut's names or patterns, e.g. 'gan.engine.history.*_merge_pairs*' "
                        "after changing that function (repeatable); the other verdicts stay")
    p.add_argument("--recheck", action="store_true", help="only the recheck of survivors and timeouts")
    p.add_argument("--recheck-minutes", type=float, help="stop rechecking after this long (the rest stays unchecked)")
    args = p.parse_args(argv)
    modules = configured_modules()
    chosen = args.module or []
    for module in chosen:
        if module not in modules:
            p.error(f"{module} is not mutated; choose one of: {', '.join(modules)}")
    def current() -> dict:  # mutants/ where it holds a module, else the record (a fresh clone)
        return read_results(record=RECORD)

    if args.retest_survivors:
        names = [n for module in chosen or [None] for n in survivors(current(), module)]
        forget_rechecks(names, record=RECORD)
    elif args.not_run or args.mutants:
        names = [n for module in chosen or [None] for n in not_run(current(), module)] if args.not_run else []
        names += args.mutants or []
    else:
        names = [f"{module}.*" for module in chosen]
    budget = None if args.recheck_minutes is None else 60 * args.recheck_minutes
    def chosen_results() -> dict:  # the recheck only looks at the modules asked for
        return {m: codes for m, codes in current().items() if not chosen or m in chosen}

    runs = not (args.report or args.survivors) and (names or not (args.retest_survivors or args.not_run))
    if args.recheck or runs:
        before, texts = (raw_and_rechecked(record=RECORD)[0], meta_texts()) if names and not args.recheck else ({}, {})
        previous = signal.signal(signal.SIGTERM, _interrupt)  # a stopped run still puts back what mutmut dropped
        try:
            if not args.recheck:
                try:
                    code = run_mutmut(names, args.max_children)
                finally:
                    if names:
                        keep_results(before, texts=texts)
                if code != 0:
                    print(f"mutmut exited with status {code}", file=sys.stderr)
                    return code
            recheck(chosen_results(), workers=args.max_children, budget_s=budget, record=RECORD)
        finally:
            signal.signal(signal.SIGTERM, previous)
            save_record(*raw_and_rechecked(record=RECORD))  # however it ended: the next machine goes on from here
    results = current()
    if args.survivors:
        print("\n".join(n for module in chosen or [None] for n in survivors(results, module)))
        return 0
    scores = score_modules(results, chosen or modules, set(raw_and_rechecked(record=RECORD)[1]))
    print(markdown_table(scores))
    for name in stale_equivalents(results):
        print(f"note: EQUIVALENT names {name}, which has no verdict (its code moved or changed)", file=sys.stderr)
    if not results:
        print(f"no verdicts: neither mutants/ nor {RECORD.relative_to(REPO)} holds any yet", file=sys.stderr)
    below = [s.module for s in scores if s.low is not None and s.low < GOAL]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
