# Files: secrets on disk, the workspace boundary, protected files, dependency changes, secrets
# in what an action writes or runs.
package flightlog.pack

import rego.v1

# Reading or writing a file that holds credentials, anywhere (.env, ~/.ssh, ~/.aws, *.pem, …).
file_findings contains {"rule": "sensitive-path", "decision": "deny", "reason": concat("", [entry.reason, ": ", p.path])} if {
	some p in touched
	regex.match(sensitive_any, p.path)
	some entry in settings.paths.sensitive
	regex.match(entry.pattern, p.path)
	not sensitive_exception(p.path)
}

# Writing or deleting outside the workspace and the write allowlist (temp directories).
# Recursive force deletes are judged by the rm rules instead.
file_findings contains {
	"rule": "write-outside-workspace",
	"decision": "deny",
	"reason": concat("", [p.access, " outside the workspace: ", p.path]),
} if {
	some p in touched
	p.access in {"write", "delete"}
	not recursive_force(p)
	not writable(p.path)
}

sensitive_any := concat("|", [concat("", ["(?:", e.pattern, ")"]) | some e in settings.paths.sensitive])

recursive_force(p) if {
	p.recursive
	p.force
}

# Reading outside the workspace and the read allowlist (off by default; turn it on with
# rules.read-outside-workspace.decision = "deny" or "ask").
file_findings contains {
	"rule": "read-outside-workspace",
	"decision": "deny",
	"reason": concat("", ["read outside the workspace: ", p.path]),
} if {
	rule_on("read-outside-workspace")
	some p in touched
	p.access == "read"
	not readable(p.path)
}

# Changing a protected file (infrastructure, CI, tool configuration, the agent's guardrails).
file_findings contains f if {
	some p in touched
	p.access in {"write", "delete"}
	in_workspace(p.path)
	some entry in settings.protected_files
	regex.match(entry.pattern, relative(p.path))
	f := {
		"rule": entry.rule,
		"decision": entry.decision,
		"reason": concat("", [entry.reason, ": ", relative(p.path)]),
		"role": object.get(entry, "role", settings.default_role),
	}
}

# A secret (found by the redaction rules) in a command, a file's new content or an edit.
file_findings contains {
	"rule": "secret-in-action",
	"decision": "deny",
	"reason": concat("", ["secret in the action (", concat(", ", action.secrets), ")"]),
} if {
	count(object.get(action, "secrets", [])) > 0
}

# Dependency files: a dependency that is not pinned to one version, or on the deny list.
file_findings contains {
	"rule": "dependency-unpinned",
	"decision": "ask",
	"reason": concat("", ["unpinned dependency in ", d.file, ": ", d.name, " ", d.spec]),
} if {
	some d in object.get(action, "dependencies", [])
	not d.pinned
}

file_findings contains {
	"rule": "dependency-denied",
	"decision": "ask",
	"reason": concat("", ["dependency on the deny list in ", d.file, ": ", d.name]),
} if {
	some d in object.get(action, "dependencies", [])
	lower(d.name) in {lower(n) | some n in settings.dependencies.deny}
}
