"""evidence_folder writes a whole folder in one step, or nothing."""

import json
import os
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.homelab.k8s_ha.plugins.action import evidence_folder


def run(args):
    task = mock.MagicMock(args=args, async_val=0, check_mode=True)
    action = evidence_folder.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None,
                                          templar=None, shared_loader_obj=None)
    return action.run(task_vars={})


def test_writes_every_file_with_its_mode_in_check_mode_too(tmp_path):
    folder = tmp_path / "evidence" / "20261202T000000000000Z-phase0_guardrails"
    result = run({"path": str(folder), "json": {"plan.json": {"id": "abc", "items": [1]}, "rollback.json": {}},
                  "text": {"report.md": "# Phase 0\n\n- Plan id: `abc`\n"}})
    assert result["changed"] is False and result["path"] == str(folder)
    assert result["files"] == ["plan.json", "report.md", "rollback.json"]
    assert sorted(os.listdir(folder)) == result["files"]
    assert json.loads((folder / "plan.json").read_text()) == {"id": "abc", "items": [1]}
    assert (folder / "plan.json").read_text() == '{\n    "id": "abc",\n    "items": [\n        1\n    ]\n}\n'
    assert (folder / "report.md").read_text() == "# Phase 0\n\n- Plan id: `abc`\n"
    assert oct(folder.stat().st_mode & 0o777) == "0o750"
    assert oct((folder / "report.md").stat().st_mode & 0o777) == "0o640"
    # nothing but the folder itself is left next to it (the staging folder was renamed)
    assert os.listdir(folder.parent) == [folder.name]


def test_an_existing_folder_is_refused_and_left_as_it_is(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "plan.json").write_text("{}")
    with pytest.raises(AnsibleActionFail, match="exists already"):
        run({"path": str(tmp_path / "run"), "json": {"plan.json": {"id": "x"}}})
    assert (tmp_path / "run" / "plan.json").read_text() == "{}"


@pytest.mark.parametrize("name", ["../plan.json", "sub/plan.json", ".hidden", ""])
def test_a_file_name_that_is_not_plain_writes_nothing(tmp_path, name):
    with pytest.raises(AnsibleActionFail, match="plain file name"):
        run({"path": str(tmp_path / "run"), "json": {"ok.json": {}}, "text": {name: "x"}})
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_no_half_folder(tmp_path, monkeypatch):
    real_chmod = os.chmod

    def fail_on_report(path, mode):
        if str(path).endswith("report.md"):
            raise OSError("disk full")
        real_chmod(path, mode)

    monkeypatch.setattr(evidence_folder.os, "chmod", fail_on_report)
    with pytest.raises(OSError, match="disk full"):
        run({"path": str(tmp_path / "run"), "json": {"plan.json": {}}, "text": {"report.md": "x"}})
    assert os.listdir(tmp_path) == []


def test_a_relative_path_is_relative_to_where_ansible_playbook_started(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run({"path": "evidence/run", "text": {"report.md": "x"}})
    assert result["path"] == str(tmp_path / "evidence" / "run")
    assert (tmp_path / "evidence" / "run" / "report.md").read_text() == "x"
