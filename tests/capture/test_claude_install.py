"""`flightlog install|uninstall claude-code`: hooks merged into settings.json without disturbing
anything else, and taken out again to the exact original bytes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightlog.capture import claude_install as ci
from flightlog.errors import ConfigError

# A user's settings as people write them: tabs, their own key order, non-ASCII text, other
# hooks (one in an event we hook too), no final newline.
ODD = (
    '{\n\t"permissions": {"allow": ["Bash(git *)"], "deny": []},\n'
    '\t"env": {"FOO": "bär", "OTEL_LOGS_EXPORTER": "console"},\n'
    '\t"hooks": {\n'
    '\t\t"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}],\n'
    '\t\t"Stop": [],\n'
    '\t\t"FileChanged": [{"hooks": [{"type": "http", "url": "http://x"}]}]\n'
    "\t},\n"
    '\t"model": "opus",\n'
    '\t"disableAllHooks": false\n'
    "}"
)


def run(
    *args: str, cwd: Path, home: Path, config_dir: Path | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI with HOME (and CLAUDE_CONFIG_DIR, FLIGHTLOG_URL) pointing into tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTLOG_", "CLAUDE_"))}
    env["HOME"] = str(home)
    if config_dir is not None:
        env["CLAUDE_CONFIG_DIR"] = str(config_dir)
    if url is not None:
        env["FLIGHTLOG_URL"] = url
    proc = subprocess.run(
        [sys.executable, "-m", "flightlog", "--home", str(home / "fl"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "proj").mkdir()
    return tmp_path / "proj"


def ours(settings: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Event → our handlers in it."""
    found = {
        event: [h for g in groups if isinstance(g, dict) for h in g.get("hooks", []) or [] if ci.is_ours(h)]
        for event, groups in settings.get("hooks", {}).items()
        if isinstance(groups, list)
    }
    return {event: handlers for event, handlers in found.items() if handlers}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- through the CLI -------------------------------------------------------------------------


def test_fresh_project_gets_every_event_with_an_absolute_command(project: Path, home: Path) -> None:
    proc = run("install", "claude-code", cwd=project, home=home)  # default DIR: the current one
    assert proc.returncode == 0, proc.stderr
    path = project / ".claude" / "settings.json"
    assert str(path) in proc.stdout and "11 events" in proc.stdout
    data = json.loads(path.read_text("utf-8"))
    assert list(data) == ["hooks"] and list(data["hooks"]) == list(ci.HOOK_EVENTS)
    for event, groups in data["hooks"].items():
        assert len(groups) == 1
        group = groups[0]
        assert group.get("matcher") == ("*" if event in ci.TOOL_EVENTS else None)
        (handler,) = group["hooks"]
        assert handler["type"] == "command" and handler["timeout"] == 30
        assert handler["command"].endswith(" hook claude-code")
        assert os.path.isabs(handler["command"].split()[0])
    assert not (project / ".claude" / "settings.json.flightlog-backup").exists()  # nothing before
    assert path.read_text("utf-8").endswith("}\n")

    again = run("install", "claude-code", "--project", str(project), cwd=home, home=home)
    assert again.returncode == 0 and "already installed" in again.stdout

    out = run("uninstall", "claude-code", "--project", str(project), cwd=home, home=home)
    assert out.returncode == 0 and "removed flightlog from 11 events" in out.stdout
    assert json.loads(path.read_text("utf-8")) == {}


def test_hook_command_runs_this_flightlog(project: Path, home: Path) -> None:
    run("install", "claude-code", cwd=project, home=home)
    data = json.loads((project / ".claude" / "settings.json").read_text("utf-8"))
    command = data["hooks"]["Stop"][0]["hooks"][0]["command"]
    proc = subprocess.run(f"{command} --help", shell=True, capture_output=True, text=True, env={}, timeout=60)
    assert proc.returncode == 0 and "hook" in proc.stdout.lower()


def test_odd_file_round_trips_byte_for_byte(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(ODD, "utf-8")
    path.chmod(0o640)
    original = json.loads(ODD)

    assert run("install", "claude-code", "--telemetry", cwd=project, home=home).returncode == 0
    installed = json.loads(path.read_text("utf-8"))
    backup = path.with_name("settings.json.flightlog-backup")
    assert backup.read_text("utf-8") == ODD and mode(backup) == 0o640
    assert mode(path) == 0o640
    assert "\n\t\t" in path.read_text("utf-8")  # the file's own indentation
    # Everything else is as it was, in its order; the other handler in PreToolUse too.
    assert list(installed)[:5] == list(original)
    for key in ("permissions", "model", "disableAllHooks"):
        assert installed[key] == original[key]
    assert installed["hooks"]["PreToolUse"][0] == original["hooks"]["PreToolUse"][0]
    assert installed["hooks"]["FileChanged"] == original["hooks"]["FileChanged"]
    assert installed["env"]["FOO"] == "bär"
    assert installed["env"]["OTEL_LOGS_EXPORTER"] == "otlp"
    assert all(len(v) == 1 for k, v in ours(installed).items() if k in ci.HOOK_EVENTS)

    proc = run("uninstall", "claude-code", cwd=project, home=home)
    assert proc.returncode == 0, proc.stderr
    assert "telemetry" in proc.stdout
    assert path.read_bytes() == ODD.encode("utf-8")
    assert mode(path) == 0o640

    nothing = run("uninstall", "claude-code", cwd=project, home=home)
    assert nothing.returncode == 0 and "not installed" in nothing.stdout
    assert path.read_bytes() == ODD.encode("utf-8")


def test_edits_made_after_install_survive_uninstall(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{\n    "model": "opus",\n    "hooks": {"Stop": []}\n}\n', "utf-8")
    run("install", "claude-code", cwd=project, home=home)
    data = json.loads(path.read_text("utf-8"))
    data["hooks"]["Stop"].insert(0, {"hooks": [{"type": "command", "command": "notify-send done"}]})
    data["permissions"] = {"allow": ["Read"]}
    path.write_text(json.dumps(data, indent=4) + "\n", "utf-8")

    assert run("uninstall", "claude-code", cwd=project, home=home).returncode == 0
    text = path.read_text("utf-8")
    assert json.loads(text) == {
        "model": "opus",
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]},
        "permissions": {"allow": ["Read"]},
    }
    assert text.startswith('{\n    "model"')  # dumped with the file's indentation


def test_reinstall_from_another_path_replaces_ours_in_place(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    old = {"type": "command", "command": "/old/venv/bin/flightlog hook claude-code", "timeout": 30}
    mine = {"type": "command", "command": "my-linter"}
    path.write_text(
        json.dumps(
            {
                "hooks": {
                    "Stop": [{"hooks": [old]}, {"hooks": [mine]}],
                    "PreToolUse": [{"matcher": "Edit", "hooks": [mine, old]}],
                    "PermissionRequest": [{"hooks": [old]}],  # an event we no longer hook
                }
            }
        ),
        "utf-8",
    )
    assert run("install", "claude-code", cwd=project, home=home).returncode == 0
    data = json.loads(path.read_text("utf-8"))
    assert all(len(handlers) == 1 for handlers in ours(data).values())
    assert "PermissionRequest" not in data["hooks"]
    assert data["hooks"]["Stop"][1] == {"hooks": [mine]}
    assert data["hooks"]["Stop"][0]["hooks"][0]["command"] != old["command"]  # same place, new path
    assert data["hooks"]["PreToolUse"][0] == {"matcher": "Edit", "hooks": [mine]}


def test_user_settings_in_claude_config_dir(tmp_path: Path, project: Path, home: Path) -> None:
    config = tmp_path / "claude-config"
    proc = run("install", "claude-code", "--user", cwd=project, home=home, config_dir=config)
    assert proc.returncode == 0, proc.stderr
    path = config / "settings.json"
    assert set(ours(json.loads(path.read_text("utf-8")))) == set(ci.HOOK_EVENTS)
    assert mode(path) == 0o600 and mode(config) == 0o700
    assert not (home / ".claude").exists() and not (project / ".claude").exists()
    assert run("uninstall", "claude-code", "--user", cwd=project, home=home, config_dir=config).returncode == 0
    assert json.loads(path.read_text("utf-8")) == {}


def test_user_settings_default_to_home(project: Path, home: Path) -> None:
    assert run("install", "claude-code", "--user", cwd=project, home=home).returncode == 0
    assert (home / ".claude" / "settings.json").exists()


def test_project_and_user_together_is_a_usage_error(project: Path, home: Path) -> None:
    proc = run("install", "claude-code", "--user", "--project", str(project), cwd=project, home=home)
    assert proc.returncode == 2 and "either --project or --user" in proc.stderr


def test_telemetry_env_added_and_removed(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    url = "http://127.0.0.1:9999"
    proc = run("install", "claude-code", "--telemetry", cwd=project, home=home, url=url)
    assert proc.returncode == 0 and url in proc.stdout
    env = json.loads(path.read_text("utf-8"))["env"]
    assert env == {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_TRACES_EXPORTER": "otlp",
        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "FLIGHTLOG_URL": url,  # for the command hooks: not the default port
    }
    # Uninstall elsewhere (other URL): the env is not flightlog's there, so it stays.
    assert run("uninstall", "claude-code", cwd=project, home=home).returncode == 0
    assert json.loads(path.read_text("utf-8")) == {"env": env}
    assert run("uninstall", "claude-code", "--url", url, cwd=project, home=home).returncode == 0
    assert json.loads(path.read_text("utf-8")) == {}


def test_telemetry_values_changed_since_are_kept(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    run("install", "claude-code", "--telemetry", "--url", "http://localhost:4318", cwd=project, home=home)
    data = json.loads(path.read_text("utf-8"))
    data["env"]["OTEL_LOGS_EXPORTER"] = "otlp,console"
    path.write_text(json.dumps(data), "utf-8")
    run("uninstall", "claude-code", "--url", "http://localhost:4318", cwd=project, home=home)
    assert json.loads(path.read_text("utf-8")) == {"env": {"OTEL_LOGS_EXPORTER": "otlp,console"}}


def test_bad_url_is_refused(project: Path, home: Path) -> None:
    proc = run("install", "claude-code", "--telemetry", "--url", "localhost:4318", cwd=project, home=home)
    assert proc.returncode == 2 and "--url" in proc.stderr
    assert not (project / ".claude").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"hooks": {,}}', "is not valid JSON"),
        ('["not", "an", "object"]', "not an object"),
        ('{"hooks": []}', '"hooks" is a list'),
        ('{"hooks": {"Stop": {}}}', '"hooks.Stop" is an object'),
        ('{"env": "x"}', '"env" is a string'),
    ],
)
def test_unusable_settings_are_a_clear_error_and_left_alone(
    project: Path, home: Path, content: str, message: str
) -> None:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(content, "utf-8")
    for command in ("install", "uninstall"):
        proc = run(
            command, "claude-code", "--telemetry" if command == "install" else "--dry-run", cwd=project, home=home
        )
        if command == "uninstall" and message.startswith('"'):
            continue  # nothing of ours in it: uninstall has nothing to say about its shape
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], proc.stderr
        assert path.read_text("utf-8") == content
        assert not path.with_name("settings.json.flightlog-backup").exists()


def test_dry_run_writes_nothing(project: Path, home: Path) -> None:
    proc = run("install", "claude-code", "--dry-run", "--telemetry", cwd=project, home=home)
    assert proc.returncode == 0, proc.stderr
    assert not (project / ".claude").exists()
    data = json.loads(proc.stdout)
    assert set(ours(data)) == set(ci.HOOK_EVENTS) and "CLAUDE_CODE_ENABLE_TELEMETRY" in data["env"]
    assert "dry run" in proc.stderr

    run("install", "claude-code", cwd=project, home=home)
    path = project / ".claude" / "settings.json"
    before = path.read_bytes()
    proc = run("uninstall", "claude-code", "--dry-run", cwd=project, home=home)
    assert json.loads(proc.stdout) == {}
    assert path.read_bytes() == before and not path.with_name("settings.json.flightlog-backup").exists()


def test_uninstall_without_a_file_creates_none(project: Path, home: Path) -> None:
    proc = run("uninstall", "claude-code", cwd=project, home=home)
    assert proc.returncode == 0 and "not installed" in proc.stdout
    assert not (project / ".claude").exists()


def test_symlinked_settings_stay_a_symlink(tmp_path: Path, project: Path, home: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    real.parent.mkdir()
    real.write_text('{"model": "opus"}', "utf-8")
    (project / ".claude").mkdir()
    link = project / ".claude" / "settings.json"
    link.symlink_to(real)
    assert run("install", "claude-code", cwd=project, home=home).returncode == 0
    assert link.is_symlink() and set(ours(json.loads(real.read_text("utf-8")))) == set(ci.HOOK_EVENTS)
    assert run("uninstall", "claude-code", cwd=project, home=home).returncode == 0
    assert link.is_symlink() and real.read_text("utf-8") == '{"model": "opus"}'


# --- the pure functions ----------------------------------------------------------------------

CMD = "/opt/flightlog/bin/flightlog hook claude-code"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# Commands of other tools, including ones that merely mention flightlog.
other_commands = st.text(max_size=20).filter(lambda c: not c.endswith(ci.HOOK_SUFFIX)) | st.sampled_from(
    ["flightlog hook claude-code --x", "hook claude-code;", "flightlog serve"]
)
handlers = st.fixed_dictionaries(
    {"type": st.sampled_from(["command", "http", "prompt"]), "command": other_commands},
    optional={"timeout": st.integers(1, 600), "async": st.booleans()},
) | st.builds(dict, st.dictionaries(st.sampled_from(["url", "if", "type"]), json_scalars, max_size=2))


def groups(min_size: int) -> st.SearchStrategy[list[Any]]:
    group = st.fixed_dictionaries(
        {"hooks": st.lists(handlers | json_scalars, min_size=min_size, max_size=3)},
        optional={"matcher": st.text(max_size=5)},
    )
    return st.lists(group | json_values, min_size=min_size, max_size=3)


@st.composite
def settings_dicts(draw: st.DrawFn, min_size: int) -> dict[str, Any]:
    """Settings with arbitrary other keys, env and hooks, in any key order; with `min_size` 1 no
    hook container is empty (so no `before` is needed to tell which empty ones were there)."""
    events = st.sampled_from([*ci.HOOK_EVENTS, "PermissionRequest", "FileChanged", "x"])
    items = list(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)).items())
    items = [(k, v) for k, v in items if k not in ("hooks", "env")]
    if draw(st.booleans()):
        hooks = draw(st.dictionaries(events, groups(min_size), min_size=min_size, max_size=5))
        items.insert(draw(st.integers(0, len(items))), ("hooks", hooks))
    if draw(st.booleans()):
        names = st.sampled_from([*ci.telemetry_env("u"), "FOO"])
        env = draw(st.dictionaries(names, st.sampled_from(["1", "otlp", "u", "v"]), max_size=4))
        items.insert(draw(st.integers(0, len(items))), ("env", env))
    return dict(items)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON text: key order and 1 vs 1.0 vs true all count."""
    return json.dumps(a) == json.dumps(b)


@given(settings_dicts(0))
@settings(max_examples=300)
def test_add_then_remove_is_the_identity(s: dict[str, Any]) -> None:
    snapshot = json.dumps(s)
    added = ci.add_hooks(s, CMD)
    assert set(ours(added)) >= set(ci.HOOK_EVENTS) and ci.hooked_events(added) == [
        e for e in added["hooks"] if e in ci.HOOK_EVENTS
    ]
    assert same(ci.remove_hooks(added, before=s), s)
    env = ci.telemetry_env("u")
    both = ci.add_env(added, env)
    assert same(ci.remove_env(ci.remove_hooks(both, before=s), env, before=s), s)
    assert json.dumps(s) == snapshot  # inputs are never modified


@given(settings_dicts(1))
@settings(max_examples=200)
def test_add_then_remove_needs_no_before_without_empty_containers(s: dict[str, Any]) -> None:
    assert same(ci.remove_hooks(ci.add_hooks(s, CMD)), s)


@given(settings_dicts(0))
@settings(max_examples=200)
def test_add_is_idempotent_and_a_new_path_replaces(s: dict[str, Any]) -> None:
    once = ci.add_hooks(s, CMD)
    assert same(ci.add_hooks(once, CMD), once)
    other = "'/other dir/flightlog' hook claude-code"
    assert same(ci.add_hooks(once, other), ci.add_hooks(s, other))


def test_is_ours_and_hook_command() -> None:
    assert ci.hook_command(["/my venv/bin/python", "-m", "flightlog"]) == (
        "'/my venv/bin/python' -m flightlog hook claude-code"
    )
    assert ci.is_ours({"type": "command", "command": "flightlog hook claude-code"})
    assert not ci.is_ours({"type": "http", "command": "flightlog hook claude-code"})
    assert not ci.is_ours({"type": "command", "command": "flightlog hook claude-code --debug"})
    assert not ci.is_ours("flightlog hook claude-code")


def test_shape_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match='"hooks" is null'):
        ci.add_hooks({"hooks": None}, CMD)
    with pytest.raises(ConfigError, match='"env" is a list'):
        ci.add_env({"env": []}, ci.telemetry_env("u"))
    assert ci.remove_hooks({"hooks": None}) == {"hooks": None}


def test_http_transport_posts_to_the_collector_and_uninstalls_cleanly(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    original = b'{\n  "permissions": {"allow": ["Bash(ls)"]}\n}\n'
    path.write_bytes(original)
    proc = run("install", "claude-code", "--transport", "http", cwd=project, home=home, url="http://127.0.0.1:4999")
    assert proc.returncode == 0, proc.stderr
    hooks = json.loads(path.read_text("utf-8"))["hooks"]
    for event, groups in hooks.items():
        (handler,) = groups[0]["hooks"]
        if event in ci.COMMAND_ONLY_EVENTS:  # Claude Code runs only command hooks there
            assert handler["type"] == "command" and handler["command"].endswith(" hook claude-code")
        else:
            assert handler == {"type": "http", "url": "http://127.0.0.1:4999/hooks/claude-code", "timeout": 30}
    # switching transports replaces ours rather than adding a second handler
    run("install", "claude-code", cwd=project, home=home)
    assert all(len(groups[0]["hooks"]) == 1 for groups in json.loads(path.read_text("utf-8"))["hooks"].values())
    assert run("uninstall", "claude-code", cwd=project, home=home).returncode == 0
    assert json.loads(path.read_bytes()) == json.loads(original)


def test_a_collector_url_of_the_users_own_is_kept(project: Path, home: Path) -> None:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"env": {"FLIGHTLOG_URL": "http://10.0.0.5:4318", "OTHER": "1"}}), "utf-8")
    assert run("install", "claude-code", cwd=project, home=home).returncode == 0
    assert json.loads(path.read_text("utf-8"))["env"] == {"FLIGHTLOG_URL": "http://10.0.0.5:4318", "OTHER": "1"}
    assert run("install", "claude-code", cwd=project, home=home).returncode == 0  # again: no change
    assert json.loads(path.read_text("utf-8"))["env"]["FLIGHTLOG_URL"] == "http://10.0.0.5:4318"
    assert run("uninstall", "claude-code", cwd=project, home=home).returncode == 0
    assert json.loads(path.read_text("utf-8")) == {"env": {"FLIGHTLOG_URL": "http://10.0.0.5:4318", "OTHER": "1"}}
