"""`flightlog policy test|eval|check`: the pack's own Rego tests, explaining one decision, and
conftest-style checks of files and diffs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CliRunner

USER_POLICY = """package flightlog.user
import rego.v1

findings contains {"rule": "no-make-deploy", "decision": "deny", "reason": "deploy from CI only"} if {
    some c in input.action.commands
    c.argv == ["make", "deploy"]
}

test_make_deploy_is_found if {
    count(findings) == 1 with input as {"action": {"commands": [{"argv": ["make", "deploy"]}]}}
}

test_this_one_fails if false
"""


def test_policy_test_runs_the_pack_and_user_tests(flightlog: CliRunner, home: Path) -> None:
    out = flightlog("policy", "test", check=True).stdout
    assert "PASS pack_test.rego: data.flightlog.pack_test.cases[0] ssh keys are denied" in out
    assert "PASS pack_test.rego: data.flightlog.pack_test.test_force_push_to_main_is_denied" in out
    assert " 0 failed" in out
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "deploy.rego").write_text(USER_POLICY)
    failing = flightlog("policy", "test")
    assert failing.returncode == 1
    assert "PASS deploy.rego: data.flightlog.user.test_make_deploy_is_found" in failing.stdout
    assert "FAIL deploy.rego: data.flightlog.user.test_this_one_fails" in failing.stdout


def test_user_findings_extend_the_pack(flightlog: CliRunner, home: Path, tmp_path: Path) -> None:
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "deploy.rego").write_text(USER_POLICY)
    hook = tmp_path / "call.json"
    hook.write_text(json.dumps({"tool_name": "Bash", "tool_input": {"command": "make deploy"}}))
    out = json.loads(flightlog("policy", "eval", "--input", str(hook), "--workspace", str(tmp_path), check=True).stdout)
    assert out["decision"] == "deny" and out["rules"] == ["no-make-deploy"]
    assert out["findings"][0]["reason"] == "deploy from CI only"
    assert out["input"]["action"]["commands"][0]["argv"] == ["make", "deploy"]


def test_policy_eval_explains_a_decision(flightlog: CliRunner, tmp_path: Path) -> None:
    hook = tmp_path / "call.json"
    hook.write_text(json.dumps({"tool_name": "Bash", "tool_input": {"command": "git push --force origin main"}}))
    out = json.loads(flightlog("policy", "eval", "--input", str(hook), "--workspace", str(tmp_path), check=True).stdout)
    assert out["decision"] == "deny" and out["rules"] == ["git-force-push-protected"]
    assert out["bundle"].startswith("sha256:") and out["input_digest"].startswith("sha256:")
    bad = flightlog("policy", "eval", "--input", str(tmp_path / "missing.json"))
    assert bad.returncode == 1 and bad.stderr.lower().startswith("error: cannot read")


def test_policy_check_fails_on_deny(flightlog: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "main.tf").write_text('resource "x" "y" {}\n')
    ok = flightlog("policy", "check", "--workspace", str(tmp_path), str(tmp_path / "app.py"), str(tmp_path / "main.tf"))
    assert ok.returncode == 0 and "ask   " in ok.stdout and "[infra-file]" in ok.stdout
    strict = flightlog("policy", "check", "--fail-on-ask", "--workspace", str(tmp_path), str(tmp_path / "main.tf"))
    assert strict.returncode == 1
    diff = tmp_path / "change.diff"
    token = "ghp_" + "Zq8fT2mK9vLx4Rb7Nc1Wd6Hs3Jy5Pa0Ge2Uo"
    diff.write_text(f"--- a/settings.py\n+++ b/settings.py\n@@ -1 +1,2 @@\n x = 1\n+TOKEN = '{token}'\n")
    denied = flightlog("policy", "check", "--workspace", str(tmp_path), str(diff))
    assert denied.returncode == 1 and "deny " in denied.stdout and "secret-in-action" in denied.stdout
    assert token not in denied.stdout


def test_a_broken_settings_file_denies(flightlog: CliRunner, home: Path, tmp_path: Path) -> None:
    (home / "policies").mkdir(parents=True)
    (home / "policies" / "settings.json").write_text("[1]")
    hook = tmp_path / "call.json"
    hook.write_text(json.dumps({"tool_name": "Bash", "tool_input": {"command": "ls"}}))
    out = json.loads(flightlog("policy", "eval", "--input", str(hook), check=True).stdout)
    assert out["decision"] == "deny" and out["reason"].startswith("policy error: settings:")
