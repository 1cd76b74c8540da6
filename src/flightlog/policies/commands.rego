# Shell commands (input.action.commands, parsed into argv): destructive commands, git, cloud and
# cluster changes, installs and publishing, data leaving the machine, credentials.
package flightlog.pack

import rego.v1

finding(rule, verdict, reason) := {"rule": rule, "decision": verdict, "reason": reason}

# --- recursive force deletes (rm -rf) --------------------------------------------------------

command_findings contains finding("rm-recursive-outside", "deny", concat("", ["recursive force delete outside the workspace: ", p.path])) if {
	some p in touched
	recursive_force(p)
	not writable(p.path)
}

command_findings contains finding("rm-recursive-workspace", "deny", concat("", ["recursive force delete in the workspace: ", relative(p.path)])) if {
	some p in touched
	recursive_force(p)
	in_workspace(p.path)
}

# --- git -------------------------------------------------------------------------------------

git_commands contains c.git if {
	some c in commands
	count(c.git) > 0
}

command_findings contains finding("git-discard", "deny", concat(" ", ["git", g[0], "discards uncommitted work"])) if {
	some g in git_commands
	git_discards(g)
}

git_discards(g) if {
	g[0] == "reset"
	"--hard" in g
}

git_discards(g) if {
	g[0] == "checkout"
	"--" in g
}

git_discards(g) if {
	g[0] == "checkout"
	"." in g
}

git_discards(g) if {
	g[0] == "restore"
	not has_flag(g, "S", "--staged")
}

git_discards(g) if {
	g[0] == "restore"
	has_flag(g, "W", "--worktree")
}

git_discards(g) if {
	g[0] == "clean"
	has_flag(g, "f", "--force")
	not has_flag(g, "n", "--dry-run")
}

git_discards(g) if {
	g[0] == "branch"
	has_flag(g, "D", "--nothing")
}

git_discards(g) if {
	g[0] == "branch"
	has_flag(g, "d", "--delete")
	has_flag(g, "f", "--force")
}

git_discards(g) if prefix_of(g, ["stash", "clear"])

git_discards(g) if prefix_of(g, ["stash", "drop"])

command_findings contains finding("git-no-verify", "deny", concat(" ", ["git", g[0], "skipping hooks (--no-verify)"])) if {
	some g in git_commands
	g[0] in {"commit", "push", "merge", "am", "rebase"}
	"--no-verify" in g
}

command_findings contains finding("git-no-verify", "deny", "git commit skipping hooks (-n)") if {
	some g in git_commands
	g[0] == "commit"
	contains(short_flags(g), "n")
}

command_findings contains finding("git-history-rewrite", "ask", concat(" ", ["git", g[0], "rewrites history"])) if {
	some g in git_commands
	git_rewrites(g)
}

git_rewrites(g) if g[0] in {"rebase", "filter-branch", "filter-repo"}

git_rewrites(g) if {
	g[0] == "commit"
	"--amend" in g
}

command_findings contains finding("git-pull", "ask", "git pull merges remote changes into the working tree") if {
	some g in git_commands
	g[0] == "pull"
}

# git push: the branches it updates ("*" when it cannot tell: no refspec, --all, --mirror)
push_targets(g) := {"*"} if count(operands(array.slice(g, 1, count(g)))) < 2

push_targets(g) := targets if {
	refspecs := array.slice(operands(array.slice(g, 1, count(g))), 1, 1000)
	count(refspecs) > 0
	targets := {branch_of(r) | some r in refspecs}
}

branch_of(refspec) := trim_prefix(trim_prefix(dst, "+"), "refs/heads/") if {
	parts := split(refspec, ":")
	dst := parts[count(parts) - 1]
}

protected(branch) if {
	some pattern in settings.git.protected_branches
	regex.match(concat("", ["^(", pattern, ")$"]), branch)
}

protected(branch) if branch == "*"

pushes contains {"force": force, "branch": b} if {
	some g in git_commands
	g[0] == "push"
	not "--dry-run" in g
	force := push_forced(g)
	some b in push_targets(g)
}

push_forced(g) := true if {
	some a in g
	a in {"--force", "-f", "--force-with-lease", "--mirror"}
} else := true if {
	some a in operands(array.slice(g, 1, count(g)))
	startswith(a, "+")
} else := true if {
	contains(short_flags(g), "f")
} else := false

command_findings contains finding("git-force-push-protected", "deny", concat("", ["force push to protected branch ", p.branch])) if {
	some p in pushes
	p.force
	protected(p.branch)
}

command_findings contains finding("git-force-push", "ask", concat("", ["force push to ", p.branch])) if {
	some p in pushes
	p.force
	not protected(p.branch)
}

command_findings contains finding("git-push-protected", "ask", reason) if {
	some p in pushes
	not p.force
	protected(p.branch)
	reason := push_reason(p.branch)
}

push_reason("*") := "git push (current branch or all branches) to a remote"

push_reason(b) := concat("", ["git push to protected branch ", b]) if b != "*"

command_findings contains finding("git-push", "ask", concat("", ["git push to ", p.branch])) if {
	some p in pushes
	not p.force
	not protected(p.branch)
}

# --- other destructive commands --------------------------------------------------------------

command_findings contains finding("pipe-to-shell", "deny", "downloaded code piped into an interpreter") if {
	some c in commands
	c.pipe_from in {"curl", "wget", "fetch"}
	count(c.argv) > 0
	c.argv[0] in interpreters
}

command_findings contains finding("pipe-to-shell", "deny", "downloaded code run by an interpreter") if {
	action.tool_name == "Bash"
	regex.match(`(curl|wget)[^|;&]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b|(ba|z)?sh\s+(-c\s+)?["']?\$\((curl|wget)|(ba|z)?sh\s+<\(\s*(curl|wget)`, object.get(action.input, "command", ""))
}

command_findings contains finding("fork-bomb", "deny", "fork bomb") if {
	action.tool_name == "Bash"
	contains(action.input.command, ":")
	regex.match(`:\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:`, object.get(action.input, "command", ""))
}

command_findings contains finding("chmod-world-writable", "deny", concat(" ", c.argv)) if {
	some c in commands
	c.argv[0] in {"chmod", "chown"}
	some a in c.argv
	regex.match(`^0?777$|^a\+rwx$|^o\+w$|^ugo\+rwx$`, a)
}

command_findings contains finding("disk-tool", "deny", concat("", [c.argv[0], " writes to a disk device"])) if {
	some c in commands
	c.argv[0] in {"dd", "shred", "wipefs", "mkswap"}
	some a in c.argv
	regex.match(`(^|=)/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk|rdisk|mapper/)`, a)
}

command_findings contains finding("disk-tool", "deny", concat("", [c.argv[0], " changes disks or partitions"])) if {
	some c in commands
	regex.match(`^(mkfs(\..+)?|fdisk|sfdisk|gdisk|parted|diskutil|format)$`, c.argv[0])
}

command_findings contains finding("disk-tool", "deny", concat("", ["redirect onto a disk device: ", r.target])) if {
	some c in commands
	some r in c.redirects
	regex.match(`^/dev/(sd|hd|vd|xvd|nvme|mmcblk|disk)`, r.target)
}

db_clients := {"psql", "mysql", "mariadb", "sqlite3", "mongosh", "mongo", "redis-cli", "clickhouse-client", "cockroach"}

command_findings contains finding("sql-destructive", "deny", concat("", ["destructive database statement via ", c.argv[0]])) if {
	some c in commands
	c.argv[0] in db_clients
	some a in c.argv
	regex.match(`(?i)\b(drop\s+(table|database|schema|index|view)|truncate\s|delete\s+from\s+[\w."]+\s*;?\s*$|flushall|flushdb|dropdatabase)`, a)
}

command_findings contains finding("kubectl-delete", "deny", concat(" ", array.slice(c.argv, 0, 4))) if {
	some c in commands
	c.argv[0] == "kubectl"
	"delete" in c.argv
}

command_findings contains {"rule": "cluster-change", "decision": "ask", "role": "infra", "reason": concat(" ", array.slice(c.argv, 0, 3))} if {
	some c in commands
	c.argv[0] == "kubectl"
	some verb in {"apply", "create", "patch", "replace", "edit", "scale", "rollout", "set", "drain", "cordon", "taint"}
	verb in c.argv
}

command_findings contains {"rule": "cluster-change", "decision": "ask", "role": "infra", "reason": concat(" ", array.slice(c.argv, 0, 3))} if {
	some c in commands
	c.argv[0] == "helm"
	c.argv[1] in {"install", "upgrade", "uninstall", "delete", "rollback"}
}

command_findings contains finding("terraform-destroy", "deny", concat(" ", c.argv)) if {
	some c in commands
	c.argv[0] in {"terraform", "tofu", "terragrunt"}
	terraform_destroys(c.argv)
}

terraform_destroys(argv) if "destroy" in argv

terraform_destroys(argv) if {
	"apply" in argv
	"-destroy" in argv
}

command_findings contains {"rule": "infra-change", "decision": "ask", "role": "infra", "reason": concat(" ", array.slice(c.argv, 0, 3))} if {
	some c in commands
	c.argv[0] in {"terraform", "tofu", "terragrunt", "pulumi"}
	not terraform_destroys(c.argv)
	some verb in {"apply", "import", "taint", "up", "state"}
	verb in c.argv
}

command_findings contains finding("docker-prune", "deny", concat(" ", c.argv)) if {
	some c in commands
	c.argv[0] in {"docker", "podman"}
	"prune" in c.argv
}

command_findings contains finding("cloud-delete", "deny", concat(" ", array.slice(c.argv, 0, 4))) if {
	some c in commands
	prefix_of(c.argv, ["aws", "s3"])
	c.argv[2] in {"rm", "rb"}
	some flag in {"--recursive", "--force"}
	flag in c.argv
}

command_findings contains finding("cloud-delete", "deny", concat(" ", array.slice(c.argv, 0, 4))) if {
	some c in commands
	c.argv[0] == "gsutil"
	"rm" in c.argv
	"-r" in c.argv
}

command_findings contains finding("cloud-delete", "deny", concat(" ", array.slice(c.argv, 0, 4))) if {
	some c in commands
	prefix_of(c.argv, ["az", "group", "delete"])
}

# --- privileges, installs, publishing --------------------------------------------------------

command_findings contains finding("sudo", "ask", concat(" ", array.concat([c.prefix[0]], c.argv))) if {
	some c in commands
	some p in c.prefix
	p in {"sudo", "doas"}
}

system_installers := {"apt", "apt-get", "yum", "dnf", "zypper", "apk", "pacman", "brew", "port", "snap", "choco"}

command_findings contains finding("global-install", "deny", concat("", ["system-wide package install: ", concat(" ", c.argv)])) if {
	some c in commands
	c.argv[0] in system_installers
	c.argv[1] in {"install", "add", "-S", "reinstall", "upgrade"}
}

command_findings contains finding("global-install", "deny", concat("", ["global package install: ", concat(" ", c.argv)])) if {
	some c in commands
	c.argv[0] in {"npm", "pnpm", "yarn", "bun"}
	some flag in {"-g", "--global", "global"}
	flag in c.argv
}

command_findings contains finding("global-install", "deny", concat("", ["package install outside an environment: ", concat(" ", c.argv)])) if {
	some c in commands
	regex.match(`^pip[0-9.]*$`, c.argv[0])
	some flag in {"--break-system-packages", "--user"}
	flag in c.argv
}

# Installing a named package without one exact version.
command_findings contains finding("dependency-unpinned", "ask", concat("", ["unpinned package install: ", pkg])) if {
	some c in commands
	some pkg in installed_packages(c.argv)
	not pinned_package(c.argv[0], pkg)
}

installed_packages(argv) := packages if {
	regex.match(`^pip[0-9.]*$|^uv$`, argv[0])
	"install" in argv
	not "-r" in argv
	not "--requirement" in argv
	packages := [a | some a in array.slice(argv, 2, 1000); not startswith(a, "-"); a != "install"; a != "pip"]
}

installed_packages(argv) := packages if {
	argv[0] in {"npm", "pnpm", "yarn", "bun"}
	argv[1] in {"install", "i", "add"}
	packages := [a | some a in array.slice(argv, 2, 1000); not startswith(a, "-")]
}

installed_packages(argv) := packages if {
	argv[0] in {"poetry", "cargo"}
	argv[1] == "add"
	packages := [a | some a in array.slice(argv, 2, 1000); not startswith(a, "-")]
}

pinned_package(tool, pkg) if {
	regex.match(`^pip|^uv$|^poetry$`, tool)
	regex.match(`^[A-Za-z0-9._\[\],-]+===?[0-9][0-9A-Za-z.!+-]*$`, pkg)
}

pinned_package(tool, pkg) if {
	tool in {"npm", "pnpm", "yarn", "bun", "cargo"}
	regex.match(`^@?[^@]+@=?[0-9]+\.[0-9]+\.[0-9]+[0-9A-Za-z.+-]*$`, pkg)
}

pinned_package(_, pkg) if regex.match(`^(\.|/|~|git\+|https?:)`, pkg)

command_findings contains finding("publish", "ask", concat("", ["publishes a package or image: ", concat(" ", array.slice(c.argv, 0, 3))])) if {
	some c in commands
	publishes(c.argv)
}

publishes(argv) if {
	argv[0] in {"npm", "pnpm", "yarn", "poetry", "uv", "cargo", "gem", "hatch", "flit"}
	argv[1] in {"publish", "push"}
}

publishes(argv) if prefix_of(argv, ["twine", "upload"])

publishes(argv) if {
	argv[0] in {"docker", "podman"}
	argv[1] == "push"
}

publishes(argv) if prefix_of(argv, ["gh", "release", "create"])

# --- data leaving the machine, credentials ---------------------------------------------------

command_findings contains finding("network-upload", "deny", concat("", ["sends data to a remote host: ", concat(" ", array.slice(c.argv, 0, 4))])) if {
	some c in commands
	uploads(c.argv)
}

uploads(argv) if {
	argv[0] == "curl"
	some a in argv
	regex.match(`^(-d|--data.*|-F|--form.*|-T|--upload-file|--json)$|^-[a-zA-Z]*[dFT]$`, a)
}

uploads(argv) if {
	argv[0] == "curl"
	some i, a in argv
	a in {"-X", "--request"}
	upper(argv[i + 1]) in {"POST", "PUT", "PATCH"}
}

uploads(argv) if {
	argv[0] == "wget"
	some a in argv
	regex.match(`^--(post|body)-(data|file)`, a)
}

uploads(argv) if argv[0] in {"nc", "ncat", "netcat", "scp", "sftp"}

credential_commands := [
	["gh", "auth", "token"],
	["aws", "configure", "get"],
	["aws", "sts", "get-session-token"],
	["gcloud", "auth", "print-access-token"],
	["gcloud", "auth", "print-identity-token"],
	["az", "account", "get-access-token"],
	["security", "find-generic-password"],
	["security", "find-internet-password"],
]

command_findings contains finding("credential-read", "deny", concat("", ["prints credentials: ", concat(" ", words)])) if {
	some c in commands
	some words in credential_commands
	prefix_of(c.argv, words)
}

command_findings contains finding("credential-read", "deny", "prints cluster credentials: kubectl config view --raw") if {
	some c in commands
	prefix_of(c.argv, ["kubectl", "config", "view"])
	"--raw" in c.argv
}

command_findings contains finding("credential-read", "deny", "gh auth status --show-token") if {
	some c in commands
	prefix_of(c.argv, ["gh", "auth", "status"])
	some a in c.argv
	a in {"--show-token", "-t"}
}

# --- configured command lists -----------------------------------------------------------------

command_findings contains finding("command-denied", "deny", object.get(entry, "reason", concat(" ", entry.argv))) if {
	some c in commands
	some entry in settings.commands.deny
	prefix_of(c.argv, entry.argv)
}

command_findings contains {"rule": "command-ask", "decision": "ask", "role": object.get(entry, "role", settings.default_role), "reason": object.get(entry, "reason", concat(" ", entry.argv))} if {
	some c in commands
	some entry in settings.commands.ask
	prefix_of(c.argv, entry.argv)
}
