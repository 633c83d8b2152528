"""gitops_files changes the checkout's files in one step, only inside it, or nothing."""

import os
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.homelab.k8s_ha.plugins.action import gitops_files


def run(args, check=False):
    task = mock.MagicMock(args=args, async_val=0, check_mode=check, diff=True)
    action = gitops_files.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None,
                                       templar=None, shared_loader_obj=None)
    return action.run(task_vars={})


def tree(root):
    out = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path) as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def test_check_writes_nothing_apply_writes_and_the_recorded_way_back_restores(tmp_path):
    root = tmp_path / "gitops"
    (root / "platform" / "apps").mkdir(parents=True)
    (root / "platform" / "apps" / "qdrant-app.yaml").write_text("source:\n  path: apps/base/qdrant\n")
    before = tree(root)
    files = [{"path": str(root / "apps/overlays/primary-lane/qdrant/kustomization.yaml"), "content": "k: 1\n"},
             {"dest": str(root / "platform/apps/qdrant-app.yaml"),
              "content": "source:\n  path: apps/overlays/primary-lane/qdrant\n"},
             {"path": str(root / "docs/migrations/qdrant.md"), "marker": "<!-- {mark} stage 1 -->", "block": "done"}]
    check = run({"root": str(root), "files": files}, check=True)
    assert check["changed"] is True and tree(root) == before
    assert [r["changed"] for r in check["files"]] == [True, True, True]
    assert check["diff"][1]["before"] == "source:\n  path: apps/base/qdrant\n"

    done = run({"root": str(root), "files": files})
    assert tree(root) == dict(before, **{
        "apps/overlays/primary-lane/qdrant/kustomization.yaml": "k: 1\n",
        "platform/apps/qdrant-app.yaml": "source:\n  path: apps/overlays/primary-lane/qdrant\n",
        "docs/migrations/qdrant.md": "<!-- BEGIN stage 1 -->\ndone\n<!-- END stage 1 -->\n"})
    assert oct((root / "docs/migrations/qdrant.md").stat().st_mode & 0o777) == "0o644"
    assert run({"root": str(root), "files": files})["changed"] is False  # idempotent

    back = run({"root": str(root), "files": [
        {"path": w["path"], "content": w["content"]} if w["existed"] else {"path": w["path"], "state": "absent"}
        for w in done["written"]]})
    assert back["changed"] is True and tree(root) == before
    # the folders the removals left empty are gone too, the checkout itself stays
    assert sorted(os.listdir(root)) == ["platform"]


@pytest.mark.parametrize("path", ["../outside.yaml", "apps/../../outside.yaml"])
def test_a_path_outside_the_checkout_writes_nothing(tmp_path, path):
    root = tmp_path / "gitops"
    root.mkdir()
    files = [{"path": str(root / "fine.yaml"), "content": "x"}, {"path": str(root) + "/" + path, "content": "y"}]
    with pytest.raises(AnsibleActionFail, match="not inside root .*nothing was written"):
        run({"root": str(root), "files": files})
    assert os.listdir(root) == [] and sorted(os.listdir(tmp_path)) == ["gitops"]


def test_a_bad_entry_is_named_before_any_write(tmp_path):
    files = [{"path": str(tmp_path / "a.yaml"), "content": "x"}, {"path": str(tmp_path / "b.yaml"), "state": "gone"}]
    with pytest.raises(AnsibleActionFail, match=r"state: 'gone'; allowed: present, absent"):
        run({"root": str(tmp_path), "files": files})
    assert os.listdir(tmp_path) == []
