"""A rollback (or a release) given a folder that does not exist stops before anything is
read, naming the variable and how to find an evidence folder, and writes nothing. Before,
it said the folder "records no change to undo", as of a run that changed nothing."""

import re

import pytest

from observe import audit_entries, audit_size, writes


def one_line(stdout):
    """The output with the YAML callback's line breaks inside a message folded back."""
    return re.sub(r"\s*\n\s*", " ", stdout)


@pytest.mark.parametrize("playbook, var, name, check", [
    ("phase0_guardrails_rollback", "rollback_from", "phase0_guardrails", True),
    ("phase0_guardrails_rollback", "rollback_from", "phase0_guardrails", False),
    ("core_platform_rollback", "rollback_from", "core_platform", True),
    ("app_migration_release", "release_from", "app_migration", True),
])
def test_a_folder_that_does_not_exist_stops_before_any_request(two_node, run_playbook, tmp_path, playbook, var, name, check):
    c = two_node
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    missing = str(tmp_path / "evidence" / "20261121T180000Z-typo")
    offset = audit_size(c)
    extra = {"evidence_root": str(evidence), var: missing}
    if not check:
        extra["approve_plan"] = "0000000000000000"
    run = run_playbook(c, "playbooks/%s.yml" % playbook, extra_vars=extra, check=check)
    said = one_line(run.stdout)
    assert run.rc != 0
    assert ("%s: %s is not a folder; give an evidence folder such as evidence/<time>-%s (ls %s/)"
            % (var, missing, name, evidence)) in said, run.stdout[-3000:]
    assert "records no change to undo" not in said
    assert writes(c, offset) == []
    # nothing was read either: the check comes before the first request
    assert [e["requestURI"] for e in audit_entries(c, offset)
            if e["user"]["username"] == "homelab-admin" and "kubectl" not in e.get("userAgent", "")] == []


def test_a_file_is_not_a_folder_either(two_node, run_playbook, tmp_path):
    c = two_node
    record = tmp_path / "rollback.json"
    record.write_text('{"lane_changes": [{"name": "worker-1"}]}')
    offset = audit_size(c)
    run = run_playbook(c, "playbooks/phase0_guardrails_rollback.yml", check=True,
                       extra_vars={"evidence_root": str(tmp_path), "rollback_from": str(record)})
    assert run.rc != 0
    assert "rollback_from: %s is not a folder" % record in one_line(run.stdout), run.stdout[-3000:]
    assert writes(c, offset) == []
