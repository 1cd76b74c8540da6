# Helpers shared by the pack's rules: paths, the workspace allowlists, commands.
package flightlog.pack

import rego.v1

action := input.action

commands := object.get(action, "commands", [])

touched := object.get(action, "paths", [])

# A settings path: "~" is the user's home, "$TMPDIR" the temp directory of the input.
expand(p) := concat("", [input.workspace.home, substring(p, 1, -1)]) if startswith(p, "~")

expand(p) := object.get(input.workspace, "tmpdir", "/tmp") if p == "$TMPDIR"

expand(p) := p if {
	not startswith(p, "~")
	p != "$TMPDIR"
}

# Directories as prefixes ending in "/", computed once per evaluation (regorus calls are not free).
prefix(dir) := concat("", [trim_right(dir, "/"), "/"])

workspace_prefix := prefix(input.workspace.root)

write_prefixes := array.concat([workspace_prefix], [prefix(expand(p)) | some p in settings.paths.allow_write])

read_prefixes := array.concat(write_prefixes, [prefix(expand(p)) | some p in settings.paths.allow_read])

under(path, dir) if startswith(concat("", [path, "/"]), prefix(dir))

in_workspace(path) if startswith(concat("", [path, "/"]), workspace_prefix)

writable(path) if {
	some d in write_prefixes
	startswith(concat("", [path, "/"]), d)
}

readable(path) if {
	some d in read_prefixes
	startswith(concat("", [path, "/"]), d)
}

# Whether a rule is switched on in the settings (for rules that are off by default).
rule_on(id) if object.get(object.get(settings.rules, id, {}), "decision", "deny") != "off"

# The path relative to the workspace root, or the absolute path outside it.
relative(path) := substring(path, count(trim_right(input.workspace.root, "/")) + 1, -1) if {
	in_workspace(path)
	path != input.workspace.root
}

relative(path) := path if not in_workspace(path)

relative(path) := "." if path == input.workspace.root

sensitive_exception(path) if {
	some pattern in settings.paths.sensitive_exceptions
	regex.match(pattern, path)
}

# Options of a command: "-rf" gives r and f; "--force" gives "--force".
short_flags(args) := concat("", [substring(a, 1, -1) | some a in args; startswith(a, "-"); not startswith(a, "--")])

has_flag(args, short, long) if contains(short_flags(args), short)

has_flag(args, _, long) if long in args

has_flag(args, _, long) if {
	some a in args
	startswith(a, concat("", [long, "="]))
}

operands(args) := [a | some a in args; not startswith(a, "-")]

shells := {"sh", "bash", "zsh", "dash", "ksh", "fish"}

interpreters := shells | {"python", "python3", "perl", "ruby", "node", "php"}

prefix_of(argv, words) if array.slice(argv, 0, count(words)) == words
