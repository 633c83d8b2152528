"""One node named as both the primary and the secondary (backup) node stops the playbook
at its first task, naming both variables, before anything is read or written. Before, the
plans went ahead with one node in both lanes. Runbook 003's GPU node is a node of its own
too: named as the preferred or the backup node, its taint would keep the converted
workloads off the node they fail over to or back to."""

import json
import re

import pytest

from observe import audit_entries, audit_size, writes


def one_line(stdout):
    """The output with the YAML callback's line breaks inside a message folded back."""
    return re.sub(r"\s*\n\s*", " ", stdout)


def requests_sent(c, offset):
    return [e["requestURI"] for e in audit_entries(c, offset)
            if e["user"]["username"] == "homelab-admin" and "kubectl" not in e.get("userAgent", "")]


@pytest.mark.parametrize("playbook, inventory, extra, message", [
    ("core_platform", "local", {"core_platform_primary_node": "worker-1", "core_platform_secondary_node": "worker-1"},
     "core_platform_primary_node and core_platform_secondary_node are both worker-1; give two different nodes"),
    # the inventories give every role its names from guardrails': the same mistake there is
    # named as the lane model's (roles/guardrails/tasks/lanes.yml, included first)
    ("core_platform", "local", {"guardrails_primary_node": "miniserver", "guardrails_secondary_node": "miniserver"},
     "guardrails_primary_node and guardrails_secondary_node are both miniserver; give two different nodes"),
    ("phase0_guardrails", "local", {"guardrails_primary_node": "worker-1", "guardrails_secondary_node": "worker-1"},
     "guardrails_primary_node and guardrails_secondary_node are both worker-1; give two different nodes"),
    ("phase0_verify", "local", {"guardrails_primary_node": "worker-1", "guardrails_secondary_node": "worker-1"},
     "guardrails_primary_node and guardrails_secondary_node are both worker-1; give two different nodes"),
    ("app_migration", "local", {"app": "apps/web", "migration_strategy": "active_active", "stage": 1,
                                "app_migration_primary_node": "miniserver", "app_migration_secondary_node": "miniserver"},
     "app_migration_primary_node and app_migration_secondary_node are both miniserver; give two different nodes"),
    ("active_passive", "local-three-worker", {"active_passive_primary_node": "k3s-w1", "active_passive_backup_node": "k3s-w1"},
     "active_passive_primary_node and active_passive_backup_node are both k3s-w1; give two different nodes"),
    ("failover_drill", "local-three-worker", {"active_passive_primary_node": "k3s-w2", "active_passive_backup_node": "k3s-w2"},
     "active_passive_primary_node and active_passive_backup_node are both k3s-w2; give two different nodes"),
    ("active_passive", "local-three-worker", {"active_passive_gpu_node": "k3s-w1"},
     "active_passive_gpu_node is k3s-w1, the preferred node too; give the GPU node of its own"),
    ("failover_drill", "local-three-worker", {"active_passive_gpu_node": "k3s-w2"},
     "active_passive_gpu_node is k3s-w2, the backup node too; give the GPU node of its own"),
])
def test_one_node_as_both_stops_before_any_request(two_node, run_playbook, tmp_path, playbook, inventory, extra, message):
    c = two_node
    offset = audit_size(c)
    run = run_playbook(c, "playbooks/%s.yml" % playbook, inventory=inventory, check=True,
                       extra_vars=dict(extra, evidence_root=str(tmp_path / "evidence")))
    assert run.rc != 0
    assert message in one_line(run.stdout), run.stdout[-3000:]
    assert writes(c, offset) == [] and requests_sent(c, offset) == []


def test_the_core_platform_rollback_refuses_it_too(two_node, run_playbook, tmp_path):
    """The rollback keeps each volume's replica on server-1: one node as both would keep the
    wrong one. Its plan refuses before its first module call."""
    c = two_node
    record = tmp_path / "evidence" / "20261121T180000Z-core_platform"
    record.mkdir(parents=True)
    (record / "rollback.json").write_text(json.dumps({"volumes": {"replicas_by_volume": {"pvc-arr": 1}}}))
    offset = audit_size(c)
    run = run_playbook(c, "playbooks/core_platform_rollback.yml", check=True, extra_vars={
        "evidence_root": str(tmp_path / "evidence"), "rollback_from": str(record),
        "core_platform_primary_node": "worker-1", "core_platform_secondary_node": "worker-1"})
    assert run.rc != 0
    assert ("core_platform_primary_node and core_platform_secondary_node are both worker-1; give two different nodes"
            in one_line(run.stdout)), run.stdout[-3000:]
    assert writes(c, offset) == [] and requests_sent(c, offset) == []
