# Tests of the built-in pack: `flightlog policy test` runs every test_* rule, and every entry of
# `cases` (input -> expected decision and rules) with the input set as a real decision's is.
# (Rules about paths are tested as cases: regorus 0.9 loses some of them under `with input as`.)
# Inputs are written as the policy stage builds them (commands and paths already derived).
package flightlog.pack_test

import rego.v1

import data.flightlog.pack

ws := {"root": "/w", "cwd": "/w", "home": "/h", "tmpdir": "/tmp"}

bash(argv) := {"workspace": ws, "action": {"tool_name": "Bash", "input": {"command": concat(" ", argv)}, "commands": [cmd(argv)]}}

cmd(argv) := {"argv": argv, "prefix": [], "redirects": [], "joined_by": "", "pipe_from": "", "embedded": false, "git": git(argv)}

git(argv) := array.slice(argv, 1, count(argv)) if argv[0] == "git"

git(argv) := [] if argv[0] != "git"

write(path) := {"workspace": ws, "action": {"tool_name": "Write", "input": {"file_path": path}, "paths": [{"path": path, "access": "write"}]}}

read(path) := {"workspace": ws, "action": {"tool_name": "Read", "input": {"file_path": path}, "paths": [{"path": path, "access": "read"}]}}

verdict(doc) := v if {
	d := pack.decision with input as doc
	v := d.decision
}

verdict(doc) := "abstain" if {
	not pack.decision with input as doc
}

test_reading_the_workspace_is_not_judged if verdict(read("/w/src/app.py")) == "abstain"


test_env_sample_is_allowed if verdict(read("/w/.env.sample")) == "abstain"



test_write_to_tmp_is_allowed if verdict(write("/tmp/out.txt")) == "abstain"


test_kubectl_apply_asks_infra if {
	d := pack.decision with input as bash(["kubectl", "apply", "-f", "x.yaml"])
	d.decision == "ask"
	d.roles == ["infra"]
}

test_an_infra_approval_allows if {
	doc := object.union(bash(["kubectl", "apply", "-f", "x.yaml"]), {"approvals": [{"role": "infra", "approver": "alice"}]})
	verdict(doc) == "allow"
}

test_a_wrong_role_approval_does_not if {
	doc := object.union(bash(["kubectl", "apply", "-f", "x.yaml"]), {"approvals": [{"role": "dev", "approver": "bob"}]})
	verdict(doc) == "ask"
}

test_git_push_to_main_asks if verdict(bash(["git", "push", "origin", "main"])) == "ask"

test_force_push_to_main_is_denied if verdict(bash(["git", "push", "--force", "origin", "main"])) == "deny"

test_force_push_to_a_feature_branch_asks if verdict(bash(["git", "push", "-f", "origin", "feat/x"])) == "ask"

test_git_reset_hard_is_denied if verdict(bash(["git", "reset", "--hard"])) == "deny"

test_git_status_is_not_judged if verdict(bash(["git", "status"])) == "abstain"

test_chmod_777_is_denied if verdict(bash(["chmod", "-R", "777", "."])) == "deny"

test_mkfs_is_denied if verdict(bash(["mkfs.ext4", "/dev/sdb1"])) == "deny"



test_a_rule_can_be_turned_off if {
	settings := object.union(data.flightlog.settings, {"rules": {"git-push-protected": {"decision": "off"}}})
	not pack.decision with input as bash(["git", "push", "origin", "main"])
		with data.flightlog.settings as settings
}

test_a_rule_can_deny_instead if {
	settings := object.union(data.flightlog.settings, {"rules": {"git-push-protected": {"decision": "deny"}}})
	d := pack.decision with input as bash(["git", "push", "origin", "main"]) with data.flightlog.settings as settings
	d.decision == "deny"
}

test_default_allow_setting if {
	settings := object.union(data.flightlog.settings, {"default": "allow"})
	d := pack.decision with input as bash(["ls"]) with data.flightlog.settings as settings
	d.decision == "allow"
}

cases := [
	{"name": "ssh keys are denied", "input": read("/h/.ssh/id_ed25519"), "decision": "deny", "rules": ["sensitive-path"]},
	{"name": ".env is denied", "input": read("/w/.env"), "decision": "deny", "rules": ["sensitive-path"]},
	{"name": "writes outside the workspace are denied", "input": write("/etc/hosts"), "decision": "deny", "rules": ["write-outside-workspace"]},
	{"name": "terraform asks infra", "input": write("/w/terraform/main.tf"), "decision": "ask", "rules": ["infra-file"], "roles": ["infra"]},
	{
		"name": "an infra approval settles a terraform ask",
		"input": object.union(write("/w/terraform/main.tf"), {"approvals": [{"role": "infra", "approver": "alice"}]}),
		"decision": "allow",
	},
	{"name": "writing the guardrails is denied", "input": write("/w/.flightlog/policies/x.rego"), "decision": "deny", "rules": ["guardrail-file"]},
	{
		"name": "secrets are denied",
		"input": object.union(bash(["echo", "x"]), {"action": {"secrets": ["github-pat"]}}),
		"decision": "deny",
		"rules": ["secret-in-action"],
	},
	{
		"name": "an unpinned dependency asks",
		"input": object.union(write("/w/requirements.txt"), {"action": {"dependencies": [{"file": "requirements.txt", "name": "requests", "spec": "", "pinned": false}]}}),
		"decision": "ask",
		"rules": ["dependency-unpinned"],
	},
	{"name": "reading the workspace is not judged", "input": read("/w/src/app.py"), "decision": "abstain"},
]
