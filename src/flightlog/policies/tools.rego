# Tools: configured deny/ask lists, tools that describe their resource, messages leaving the
# organisation.
package flightlog.pack

import rego.v1

tool_findings contains {"rule": "tool-denied", "decision": "deny", "reason": concat("", ["tool ", action.tool_name, " is not allowed"])} if {
	action.tool_name in settings.tools.deny
}

tool_findings contains {"rule": "tool-ask", "decision": "ask", "reason": concat("", ["tool ", action.tool_name, " needs approval"])} if {
	action.tool_name in settings.tools.ask
}

# A tool call that describes the resource it acts on (an MCP gateway, a Cedar/OPA-style
# action): destructive resources are refused, and so are resources that do not say (fail closed).
resource := action.input.resource if is_object(action.input.resource)

tool_findings contains {"rule": "resource-destructive", "decision": "deny", "reason": concat("", ["destructive resource: ", object.get(resource, "id", "?")])} if {
	resource.destructive == true
}

tool_findings contains {"rule": "resource-unannotated", "decision": "deny", "reason": concat("", ["resource does not declare whether it is destructive: ", object.get(resource, "id", "?")])} if {
	not "destructive" in object.keys(resource)
}

# Messages (mail, chat, gists) to recipients outside the allowed domains leave the organisation.
tool_findings contains {"rule": "message-outside", "decision": "deny", "reason": concat("", ["message to a recipient outside the allowed domains: ", to])} if {
	not action.tool_name in builtin_tools
	regex.match(settings.messages.tools, action.tool_name)
	some key in ["to", "recipient", "email", "cc", "bcc"]
	some to in recipients(object.get(action.input, key, []))
	not allowed_recipient(to)
}

recipients(v) := [v] if is_string(v)

recipients(v) := v if is_array(v)

allowed_recipient(to) if {
	some domain in settings.messages.allowed_domains
	endswith(lower(to), concat("", ["@", lower(domain)]))
}

builtin_tools := {
	"Bash", "Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "Glob", "Grep", "LS",
	"WebFetch", "WebSearch", "Task", "Agent", "TodoWrite", "BashOutput", "KillShell",
}
