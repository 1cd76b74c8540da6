"""Workspace listing outside git: hidden folders that matter are seen, tool caches are not."""

from __future__ import annotations

from pathlib import Path

from flightlog.capture.workspace import changes, list_files, scan


def test_a_plain_folder_lists_ci_config_but_not_caches(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\n")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "site.py").write_text("x = 1\n")
    (tmp_path / "node_modules" / "left-pad").mkdir(parents=True)
    (tmp_path / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print(1)\n")
    assert list_files(tmp_path, home=tmp_path.parent / "home") == [".github/workflows/ci.yml", "src/app.py"]


def test_changes_between_scans_name_each_file_once(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("same\n")
    (tmp_path / "edit.txt").write_text("old\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    before = scan(tmp_path, list_files(tmp_path, home=tmp_path.parent / "home") or [])
    (tmp_path / "edit.txt").write_text("new content\n")
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "new.txt").write_text("hi\n")
    after = scan(tmp_path, list_files(tmp_path, home=tmp_path.parent / "home") or [])
    assert changes(before, after) == [("patch", "edit.txt"), ("delete", "gone.txt"), ("create", "new.txt")]
