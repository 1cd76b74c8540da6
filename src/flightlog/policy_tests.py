"""`flightlog policy test`: run the `test_*` rules of the built-in pack and the user's Rego.

regorus has no test runner, so this finds every rule named `test_…` in each file (its package
from the `package` line) and evaluates `data.<package>.<rule>` with the policies and settings
loaded as for a decision: true passes; false, undefined or an error fails. A package may also
define `cases`, a list of `{"name", "input", "decision"[, "rules", "roles"]}`: each input is set
as a real decision's is and `data.flightlog.pack.decision` must match ("abstain": undefined).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

from flightlog.policy_stage import DECISION_RULE, PACK_DIR, SETTINGS_NAME, error_line, load_settings, policy_files

__all__ = ["TestResult", "run_tests", "test_files"]

_PACKAGE: Final = re.compile(r"^package\s+([A-Za-z_][A-Za-z0-9_.]*)", re.M)
_TEST_RULE: Final = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.M)
_CASES: Final = re.compile(r"^cases\s*:=", re.M)


class TestResult:
    """One test rule: the file it is in, `data.<package>.<rule>`, passed, and the error if any."""

    __slots__ = ("error", "file", "passed", "rule")
    __test__ = False  # not a pytest class

    def __init__(self, file: str, rule: str, passed: bool, error: str | None = None) -> None:
        self.file, self.rule, self.passed, self.error = file, rule, passed, error


def test_files(home: Path, workspace: Path | None, paths: list[Path], *, pack: bool = True) -> list[Path]:
    """Return every Rego file to load: the pack's (with its tests) unless `pack` is false, then
    `paths` (files, or folders of *.rego) if given, else the user's policy folders."""
    found = [*sorted(PACK_DIR.glob("*.rego")), PACK_DIR / SETTINGS_NAME] if pack else []
    if paths:
        for path in paths:
            found.extend(sorted(path.glob("*.rego")) + sorted(path.glob(SETTINGS_NAME)) if path.is_dir() else [path])
        return found
    places = [home / "policies"] + ([workspace / ".flightlog" / "policies"] if workspace else [])
    for place in places:
        if place.is_dir():
            found.extend(sorted(p for p in place.iterdir() if p.suffix == ".rego" or p.name == SETTINGS_NAME))
    return found


def run_tests(home: Path, workspace: Path | None, paths: list[Path], *, pack: bool = True) -> list[TestResult]:
    """Load the files of `test_files` in one engine and evaluate every test rule in them."""
    import regorus

    files = test_files(home, workspace, paths, pack=pack)
    if not pack:  # user tests still see the pack's settings shape
        files = [p for p in policy_files(home, None) if p.name == SETTINGS_NAME][:1] + files
    engine = regorus.Engine()
    tests: list[tuple[str, str]] = []
    tables: list[tuple[str, str]] = []
    try:
        for path in files:
            if path.suffix != ".rego":
                continue
            text = path.read_text("utf-8")
            engine.add_policy(path.name, text)
            package = _PACKAGE.search(text)
            if package:
                tests.extend(
                    (path.name, f"data.{package.group(1)}.{rule}") for rule in dict.fromkeys(_TEST_RULE.findall(text))
                )
                if _CASES.search(text):
                    tables.append((path.name, f"data.{package.group(1)}.cases"))
        engine.add_data_json(json.dumps({"flightlog": {"settings": load_settings(files)}}))
    except Exception as exc:
        return [TestResult("(load)", "compile", False, error_line(exc))]
    results = []
    for name, rule in tests:
        try:
            value = engine.eval_rule(rule)
            results.append(TestResult(name, rule, value is True))
        except Exception as exc:
            results.append(TestResult(name, rule, False, error_line(exc)))
    for name, rule in tables:
        results.extend(_run_cases(engine, name, rule))
    return results


def _run_cases(engine: Any, name: str, rule: str) -> list[TestResult]:
    try:
        cases = json.loads(engine.eval_query_as_json(rule))["result"][0]["expressions"][0]["value"]
    except Exception as exc:
        return [TestResult(name, rule, False, error_line(exc))]
    results = []
    for index, case in enumerate(cases if isinstance(cases, list) else []):
        label = f"{rule}[{index}] {case.get('name', '')}".rstrip()
        try:
            engine.set_input_json(json.dumps(case["input"]))
            found = json.loads(engine.eval_query_as_json(DECISION_RULE)).get("result", [])
        except Exception as exc:
            results.append(TestResult(name, label, False, error_line(exc)))
            continue
        got = found[0]["expressions"][0]["value"] if found else {"decision": "abstain"}
        wrong = [
            f"{key} {got.get(key)!r}, expected {case[key]!r}"
            for key in ("decision", "rules", "roles")
            if key in case and got.get(key) != case[key]
        ]
        results.append(TestResult(name, label, not wrong, "; ".join(wrong) or None))
    return results
