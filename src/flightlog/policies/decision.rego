# The built-in policy pack: how findings become one decision.
#
# Every rule of the pack adds to `file_findings`, `command_findings` or `tool_findings` a {"rule", "decision", "reason"[, "role"]} object.
# User policies extend the pack by adding to `data.flightlog.findings` (package flightlog), or
# replace its verdict where they define `data.flightlog.decision`. Settings (settings.json, merged
# with the user's) can turn any rule off or change its decision and role: `rules.<id>.decision`
# is deny, ask, allow or off. Deny beats ask beats allow; an ask is satisfied by verified
# approvals of every role it needs (input.approvals). No finding: the pack abstains (or allows
# with `default: "allow"`).
package flightlog.pack

import rego.v1

settings := data.flightlog.settings

raw_findings contains f if {
	some f in file_findings
}

raw_findings contains f if {
	some f in command_findings
}

raw_findings contains f if {
	some f in tool_findings
}

raw_findings contains f if {
	some f in data.flightlog.user.findings
}

effective contains f if {
	settings.enabled
	some raw in raw_findings
	override := object.get(settings.rules, raw.rule, {})
	verdict := object.get(override, "decision", raw.decision)
	verdict != "off"
	f := {
		"rule": raw.rule,
		"decision": verdict,
		"reason": raw.reason,
		"role": object.get(override, "role", object.get(raw, "role", settings.default_role)),
	}
}

denies := {f | some f in effective; f.decision == "deny"}

asks := {f | some f in effective; f.decision == "ask"}

allows := {f | some f in effective; f.decision == "allow"}

approved_roles := {a.role | some a in object.get(input, "approvals", [])}

open_asks := {f | some f in asks; not f.role in approved_roles}

open_roles := sort({f.role | some f in open_asks})

ask_roles := sort({f.role | some f in asks})

reasons(fs) := concat("; ", sort({f.reason | some f in fs}))

rule_ids(fs) := sort({f.rule | some f in fs})

pack_decision := {"decision": "deny", "reason": reasons(denies), "rules": rule_ids(denies)} if count(denies) > 0

pack_decision := {
	"decision": "ask",
	"reason": reasons(open_asks),
	"rules": rule_ids(open_asks),
	"roles": open_roles,
} if {
	count(denies) == 0
	count(open_asks) > 0
}

pack_decision := {
	"decision": "allow",
	"reason": concat("", ["approved: ", reasons(asks)]),
	"rules": rule_ids(asks),
	"roles": ask_roles,
} if {
	count(denies) == 0
	count(asks) > 0
	count(open_asks) == 0
}

pack_decision := {"decision": "allow", "reason": reasons(allows), "rules": rule_ids(allows)} if {
	count(denies) == 0
	count(asks) == 0
	count(allows) > 0
}

pack_decision := {"decision": "allow", "reason": "no rule objected", "rules": []} if {
	count(effective) == 0
	settings["default"] == "allow"
}

# What the stage asks for: a user's own `data.flightlog.decision` wins where it is defined.
decision := d if {
	d := data.flightlog.decision
} else := d if {
	d := pack_decision
}
