import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.files import (
    inside,
    op_kind,
    plan_files,
    restore_files,
    results,
    with_block,
    written,
)

MARK = "<!-- {mark} stage 1 -->"


def test_op_kind_names_what_is_wrong():
    assert op_kind({"path": "/r/a", "content": "x"}) == ("content", None)
    assert op_kind({"dest": "/r/a", "state": "absent"}) == ("absent", None)
    assert op_kind({"path": "/r/a", "block": "x", "marker": MARK}) == ("block", None)
    assert "without path" in op_kind({"content": "x"})[1]
    assert "exactly one of" in op_kind({"path": "/r/a", "content": "x", "state": "absent"})[1]
    assert "exactly one of" in op_kind({"path": "/r/a"})[1]
    assert op_kind({"path": "/r/a", "state": "gone"})[1] == "files[/r/a].state: 'gone'; allowed: present, absent"
    assert "must contain {mark}" in op_kind({"path": "/r/a", "block": "x", "marker": "<!-- -->"})[1]


def test_inside_refuses_an_escape():
    assert inside("/r/apps/a.yaml", "/r") and inside("/r", "/r")
    assert not inside("/r/../etc/passwd", "/r") and not inside("/rx/a", "/r")
    assert inside("/anything", "/")


@pytest.mark.parametrize("before, after", [
    (None, "<!-- BEGIN stage 1 -->\nnotes\n<!-- END stage 1 -->\n"),
    ("# Title", "# Title\n<!-- BEGIN stage 1 -->\nnotes\n<!-- END stage 1 -->\n"),
    ("# T\n<!-- BEGIN stage 1 -->\nold\nlines\n<!-- END stage 1 -->\ntail\n",
     "# T\n<!-- BEGIN stage 1 -->\nnotes\n<!-- END stage 1 -->\ntail\n"),
])
def test_with_block_appends_or_replaces_as_blockinfile_does(before, after):
    assert with_block(before, MARK, "notes") == after
    assert with_block(after, MARK, "notes\n") == after  # the same block again changes nothing


def test_plan_files_records_the_first_prior_content_once():
    disk = {"/r/app.yaml": "path: base/a\n", "/r/old.yaml": "x\n"}
    ops = [{"path": "/r/o/kustomization.yaml", "content": "k\n"},
           {"path": "/r/app.yaml", "content": "path: overlay/a\n"},
           {"path": "/r/same.yaml", "content": "s\n"},
           {"path": "/r/old.yaml", "state": "absent"},
           {"path": "/r/gone.yaml", "state": "absent"},
           {"path": "/r/doc.md", "block": "one", "marker": MARK},
           {"path": "/r/doc.md", "block": "two", "marker": MARK.replace("1", "2")}]
    disk["/r/same.yaml"] = "s\n"
    planned = plan_files(ops, disk.get)
    assert [(p["path"], p["before"] != p["after"]) for p in planned] == [
        ("/r/o/kustomization.yaml", True), ("/r/app.yaml", True), ("/r/same.yaml", False),
        ("/r/old.yaml", True), ("/r/gone.yaml", False), ("/r/doc.md", True), ("/r/doc.md", True)]
    assert planned[-1]["after"].count("BEGIN") == 2  # the second block sees the first
    assert written(planned) == [
        {"path": "/r/o/kustomization.yaml", "existed": False, "content": ""},
        {"path": "/r/app.yaml", "existed": True, "content": "path: base/a\n"},
        {"path": "/r/old.yaml", "existed": True, "content": "x\n"},
        {"path": "/r/doc.md", "existed": False, "content": ""}]
    shown = results(planned)
    assert shown[3] == {"item": {"dest": "/r/old.yaml"}, "changed": True,
                        "diff": {"before": "x\n", "after": {"state": "absent"},
                                 "before_header": "/r/old.yaml", "after_header": "/r/old.yaml"}}
    # and back: what written recorded, put back, leaves the disk as it was
    back = plan_files(restore_files(written(planned)),
                      dict((p["path"], p["after"]) for p in planned if p["after"] is not None).get)
    assert dict((p["path"], p["after"]) for p in back) == {
        "/r/o/kustomization.yaml": None, "/r/app.yaml": "path: base/a\n", "/r/old.yaml": "x\n", "/r/doc.md": None}
