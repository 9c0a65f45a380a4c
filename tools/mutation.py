"""`python tools/mutation.py`: mutation testing (mutmut 3.3.1) of the modules whose bugs hurt a workshop most, and
the score per module. A thin wrapper: mutmut makes the mutants, runs the tests and keeps the verdicts (mutants/,
ignored by git); this runs it with its timeout watchdog fixed and without the tests' worker-process twins, keeps
the other modules' verdicts while one module runs, and prints the table.

    nice -n 19 python tools/mutation.py --module gan.store.storage --max-children 1   # one module, gently
    python tools/mutation.py                 # every module: about 1.5 hours on 2 cores
    python tools/mutation.py --report        # the table of what mutants/ holds, without running
    python tools/mutation.py --survivors     # the surviving mutants' names, for `mutmut show NAME`

Which modules and which tests: pyproject.toml's [tool.mutmut]. An equivalent mutant (no test can kill it: the
program behaves the same) is never made: its line in gan/ ends with `# pragma: no mutate (the reason)`. mutmut
3.3.1 skips every mutation of a syntax node that *starts* on such a line, whatever it is (on a `def` line: the
default values written there; a call's dropped or None-ed arguments belong to the line where the call starts), so
a pragma only goes on a line whose every mutant is equivalent. A mutant counts as killed when a test fails on it;
a timeout counts with them (the mutant hangs a test: a user would notice); a survivor is a missing test (or an
equivalent mutant a line pragma cannot single out); "no test" is code no selected test reaches.
"""

import argparse
import fnmatch
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from time import sleep

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: mutmut depends on `toml` there, which reads the same
    import toml as tomllib

REPO = Path(__file__).resolve().parents[1]
MUTANTS = REPO / "mutants"
GOAL = 0.85  # the share of mutants each module's tests must kill
PRAGMA = re.compile(r"# pragma: no mutate\b(.*)$")
WORKER_ID = re.compile(r"[\[-]process[\]-]")  # a test id's "process" parameter: a run in the worker process

# mutmut 3.3.1's exit code of one mutant's test run (its status_by_exit_code) -> the ModuleScore field it counts
# in. Copied, not imported: importing mutmut.__main__ sets the process's multiprocessing start method.
COUNTS = {1: "killed", 3: "killed",  # a test failed; pytest's internal error
          -24: "timeout", 24: "timeout", 36: "timeout", 152: "timeout", 255: "timeout",  # over its time limit
          -11: "timeout",  # segfault
          0: "survived", 35: "survived",  # every test passed; "suspicious"
          5: "no_tests", 33: "no_tests",  # no test collected; no selected test calls the function
          None: "not_run", 2: "not_run", 34: "not_run"}  # not yet; interrupted; skipped


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    killed: int = 0
    timeout: int = 0
    survived: int = 0
    no_tests: int = 0
    not_run: int = 0
    pragmas: int = 0  # lines of the module with `# pragma: no mutate`: their mutants are not made

    @property
    def judged(self) -> int:  # mutants a test could have killed
        return self.killed + self.timeout + self.survived + self.no_tests

    @property
    def score(self) -> float | None:
        return (self.killed + self.timeout) / self.judged if self.judged else None


def counted_as(code: int | None) -> str:
    """The ModuleScore field of one exit code; an unknown code counts as survived, so it lowers the score."""
    return COUNTS.get(code, "survived")


def configured_modules(repo: Path = REPO) -> list[str]:
    """The modules [tool.mutmut] mutates: every .py under paths_to_mutate not matched by do_not_mutate."""
    cfg = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["mutmut"]
    modules = []
    for root in cfg["paths_to_mutate"]:
        for path in sorted((repo / root).rglob("*.py")):
            rel = path.relative_to(repo).as_posix()
            if not any(fnmatch.fnmatch(rel, p) for p in cfg.get("do_not_mutate", [])):
                modules.append(rel[:-3].replace("/", "."))
    return modules


def pragma_lines(module: str, repo: Path = REPO) -> list[tuple[int, str, str]]:
    """(line number, line, reason) of each `# pragma: no mutate` in a module's source."""
    text = (repo / (module.replace(".", "/") + ".py")).read_text()
    return [(i, line, m.group(1).strip()) for i, line in enumerate(text.splitlines(), start=1)
            if (m := PRAGMA.search(line))]


def _meta(module: str, mutants: Path) -> Path:
    return mutants / (module.replace(".", "/") + ".py.meta")


def read_results(modules: list[str], mutants: Path = MUTANTS) -> dict[str, dict[str, int | None]]:
    """module -> {mutant name: mutmut's exit code, None while not run}, from mutmut's .meta files."""
    results = {}
    for module in modules:
        if _meta(module, mutants).exists():
            results[module] = json.loads(_meta(module, mutants).read_text())["exit_code_by_key"]
    return results


def score_modules(results: dict[str, dict[str, int | None]], modules: list[str],
                  pragmas: dict[str, int] | None = None) -> list[ModuleScore]:
    scores = []
    for module in modules:
        s = ModuleScore(module, pragmas=(pragmas or {}).get(module, 0))
        for code in results.get(module, {}).values():
            s.total += 1
            field = counted_as(code)
            setattr(s, field, getattr(s, field) + 1)
        scores.append(s)
    return scores


def survivors(results: dict[str, dict[str, int | None]]) -> list[str]:
    return sorted(name for codes in results.values() for name, code in codes.items()
                  if counted_as(code) in ("survived", "no_tests"))


def markdown_table(scores: list[ModuleScore]) -> str:
    lines = ["| Module | Mutants | Killed | Timeout | Survived | No test | Not run | Pragma lines | Score |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in scores:
        score = "–" if s.score is None else f"{s.score:.0%}" + ("" if s.score >= GOAL else " ✗")
        lines.append(f"| `{s.module}` | {s.total} | {s.killed} | {s.timeout} | {s.survived} | {s.no_tests} "
                     f"| {s.not_run} | {s.pragmas} | {score} |")
    return "\n".join(lines)


def saved_verdicts(modules: list[str], mutants: Path = MUTANTS) -> dict[str, tuple[str, str]]:
    """module -> (its mutated source, its .meta text) as mutants/ holds them now."""
    saved = {}
    for module in modules:
        source, meta = mutants / (module.replace(".", "/") + ".py"), _meta(module, mutants)
        if source.exists() and meta.exists():
            saved[module] = (source.read_text(), meta.read_text())
    return saved


def restore_verdicts(saved: dict[str, tuple[str, str]], mutants: Path = MUTANTS) -> list[str]:
    """Put back the verdicts of modules a run did not test. mutmut 3.3.1 makes every module's mutants again on
    each run and resets all their verdicts (create_mutants_for_file writes a fresh .meta), so running one module
    would forget every other. A verdict comes back only where the module's mutants are the very same text as
    when it was measured; an edited module stays "not run". Returns the modules put back."""
    back = []
    for module, (source, meta) in saved.items():
        path = mutants / (module.replace(".", "/") + ".py")
        if path.exists() and path.read_text() == source:
            _meta(module, mutants).write_text(meta)
            back.append(module)
    return back


def overdue(files, now: datetime) -> list[int]:
    """The pids of running mutants past their own time limit, (their tests' duration + 1) x 15 s: what mutmut
    3.3.1's watchdog means to do. Its own compares every running mutant of a file with each other mutant's limit
    in turn, so the file's quickest mutant (one with no tests: 15 s) sets the limit for all of them, and a slow
    test that passes is killed as a "timeout", which counts as killed. Upstream, open:
    https://github.com/boxed/mutmut/issues/518"""
    late = []
    for m in files:  # mutmut's SourceFileMutationData: one per mutated file
        started = dict(m.start_time_by_pid)
        for pid, start in started.items():
            if (now - start).total_seconds() > (m.estimated_time_of_tests_by_pid.get(pid, 0.0) + 1) * 15:
                late.append(pid)
    return late


def launch(argv: list[str]) -> None:
    """mutmut's command line (`mutmut run ...`) with the watchdog above, the durations and InProcessOnly below; run
    in a child process (run_mutmut): its forked test runs must import the mutated copy of gan under mutants/, not
    one this process imported."""
    import mutmut
    import mutmut.__main__ as mm
    import pytest

    def per_mutant_timeout_checker(mutants):
        files = list({id(m): m for m, _, _ in mutants}.values())

        def watch():
            while True:
                sleep(1)
                with mm.START_TIMES_BY_PID_LOCK:
                    late = overdue(files, datetime.now())
                for pid in late:
                    try:
                        os.kill(pid, signal.SIGXCPU)
                    except ProcessLookupError:
                        pass
        return watch

    class InProcessOnly:
        """A pytest plugin: leaves out the test ids with a "process" parameter. tests/test_trainer.py runs each
        claim on a run in this process ("thread") and on one in a spawned training worker ("process"); under
        mutmut the worker cannot start (in its stats run, the spawned child's trampolines import mutmut.__main__,
        which sets the multiprocessing start method the child already has: "context has already been set"),
        and it would cost seconds per mutant. The in-process twin runs the same claim."""

        @pytest.hookimpl(tryfirst=True)
        def pytest_collection_modifyitems(self, config, items):
            out = [item for item in items if WORKER_ID.search(item.nodeid)]
            if out:
                config.hook.pytest_deselected(items=out)
                items[:] = [item for item in items if item not in out]

    class PhaseSummingRunner(mm.PytestRunner):
        """mutmut 3.3.1 records a test's duration from pytest's last report, the teardown's (milliseconds), which
        starves the time limits above; this adds setup, call and teardown (fixed upstream after 3.3.1:
        https://github.com/boxed/mutmut/issues/544). And every pytest run it makes gets InProcessOnly."""

        def execute_pytest(self, params, **kwargs):
            plugins = [*kwargs.pop("plugins", []), InProcessOnly()]
            return super().execute_pytest(params, plugins=plugins, **kwargs)

        def run_stats(self, *, tests):
            class StatsCollector:
                def pytest_runtest_teardown(self, item, nextitem):
                    test = mm.strip_prefix(item._nodeid, prefix="mutants/")
                    for function in mutmut._stats:
                        mutmut.tests_by_mangled_function_name[function].add(test)
                    mutmut._stats.clear()

                def pytest_runtest_makereport(self, item, call):
                    before = 0.0 if call.when == "setup" else mutmut.duration_by_test.get(item.nodeid, 0.0)
                    mutmut.duration_by_test[item.nodeid] = before + call.duration

            args = ["-x", "-q"] + (list(tests) or list(mutmut.config.tests_dir))
            with mm.change_cwd("mutants"):
                return int(self.execute_pytest(args, plugins=[StatsCollector()]))

    mm.timeout_checker = per_mutant_timeout_checker
    mm.PytestRunner = PhaseSummingRunner
    mm.cli(argv)


def run_mutmut(names: list[str], max_children: int) -> int:
    """`mutmut run` from the repository root (it reads pyproject.toml there), for the mutants ``names`` (globs
    such as ``gan.core.losses.*``; none: all), in its own process group so that a stop ends its test runs too."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import mutation; " \
           "mutation.launch(sys.argv[1:])"
    child = subprocess.Popen([sys.executable, "-c", code, "run", "--max-children", str(max_children), *names],
                             cwd=REPO, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: mutmut has saved each verdict as it came
        os.killpg(child.pid, signal.SIGINT)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        raise


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/mutation.py", description=__doc__.split("\n")[0])
    p.add_argument("--module", action="append", help="only this module, e.g. gan.core.losses (repeatable)")
    p.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    p.add_argument("--report", action="store_true", help="print the table of mutants/ without running")
    p.add_argument("--survivors", action="store_true", help="list the surviving mutants instead of the table")
    args = p.parse_args(argv)
    modules = configured_modules()
    chosen = args.module or modules
    for module in chosen:
        if module not in modules:
            p.error(f"{module} is not mutated; choose one of: {', '.join(modules)}")
    if not (args.report or args.survivors):
        saved = saved_verdicts([m for m in modules if m not in chosen])
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            code = run_mutmut([f"{m}.*" for m in args.module or []], args.max_children)
        except KeyboardInterrupt:
            code = 0
            print("stopped: the mutants not reached read \"not run\"", file=sys.stderr)
        finally:
            signal.signal(signal.SIGTERM, previous)
            restore_verdicts(saved)
        if code != 0:
            print(f"mutmut exited with status {code}", file=sys.stderr)
            return code
    results = read_results(chosen)
    if args.survivors:
        print("\n".join(survivors(results)))
        return 0
    scores = score_modules(results, chosen, {m: len(pragma_lines(m)) for m in chosen})
    print(markdown_table(scores))
    return 1 if any(s.score is not None and s.score < GOAL for s in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
