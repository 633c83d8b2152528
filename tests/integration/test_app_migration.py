"""app_migration.yml, strategy A (active_active), on the two-node fixture with worker-1
uncordoned but lane-tainted: stage 1 keeps two replicas on miniserver, stage 2 puts one
on each node (placed by the real scheduler), both rolled back to the before-snapshot;
check mode writes nothing; an app that fails a safety gate is refused."""

import json

import pytest

from observe import audit_size, newest_evidence as newest, writes

APPLY = "playbooks/app_migration.yml"
ROLLBACK = "playbooks/app_migration_rollback.yml"
PROBE = {"httpGet": {"path": "/", "port": 8080}}
WEB = {"apiVersion": "apps/v1", "kind": "Deployment",
       "metadata": {"name": "web", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "migration"}},
       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "nodeSelector": {"workload-lane": "primary"},
                    "containers": [{"name": "web", "image": "registry.example/web:1",
                                    "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
                                    "readinessProbe": PROBE, "livenessProbe": PROBE}]}}}}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
       "metadata": {"name": "web", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "migration"}},
       "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}


def web_nodes(c):
    pods = c.get_json("pods", "-n", "apps", "-l", "app=web")["items"]
    return sorted(p["spec"].get("nodeName", "") for p in pods
                  if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


def web_spec(c):
    return c.get_json("deployment", "web", "-n", "apps")["spec"]


@pytest.fixture
def migration(two_node, run_playbook, tmp_path):
    c = two_node
    c.kubectl("label", "node", "miniserver", "workload-lane=primary", "--overwrite")
    c.kubectl("label", "node", "worker-1", "workload-lane=secondary", "--overwrite")
    c.kubectl("taint", "node", "worker-1", "workload-lane=secondary:NoSchedule", "--overwrite")
    c.kubectl("uncordon", "worker-1")
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [WEB, PDB]}))
    c.kubectl("rollout", "status", "-n", "apps", "deployment/web", "--timeout=60s")
    evidence = tmp_path / "evidence"

    def run(playbook=APPLY, check=False, **extra):
        extra.setdefault("evidence_root", str(evidence))
        extra.setdefault("rollback_evidence_root", str(evidence))
        extra.setdefault("app_migration_watch_seconds", 3)
        return run_playbook(c, playbook, extra_vars=extra, check=check)
    run.evidence = evidence
    yield run
    c.kubectl("delete", "deployment,pdb", "-n", "apps", "-l", "homelab.k8s-ha/fixture=migration", "--wait=true")
    c.kubectl("cordon", "worker-1")
    c.kubectl("label", "node", "miniserver", "worker-1", "workload-lane-", check=False)
    c.kubectl("taint", "node", "worker-1", "workload-lane:NoSchedule-", check=False)


def stage(migration, c, number):
    args = {"app": {"namespace": "apps", "workload": "web"}, "strategy": "active_active", "stage": number}
    offset = audit_size(c)
    check = migration(check=True, **args)
    assert check.rc == 0, check.stdout[-4000:]
    assert writes(c, offset) == []
    plan = json.loads((newest(migration.evidence, "app_migration") / "plan.json").read_text())
    assert [i["object"] for i in plan["items"]] == ["Deployment/web"]
    apply = migration(approve_plan=plan["id"], **args)
    assert apply.rc == 0, apply.stdout[-4000:]
    run_dir = newest(migration.evidence, "app_migration")
    verify = json.loads((run_dir / "verify.json").read_text())
    assert all(chk["passed"] for chk in verify["checks"]), verify
    return run_dir


def undo(migration, c, run_dir):
    offset = audit_size(c)
    check = migration(ROLLBACK, check=True, rollback_from=str(run_dir))
    assert check.rc == 0, check.stdout[-4000:]
    assert writes(c, offset) == []
    plan = json.loads((newest(migration.evidence, "app_migration_rollback") / "plan.json").read_text())
    run = migration(ROLLBACK, rollback_from=str(run_dir), approve_plan=plan["id"])
    assert run.rc == 0, run.stdout[-4000:]


def test_strategy_a_stage_1_stage_2_and_rollback(migration, two_node):
    c = two_node
    before = web_spec(c)

    first = stage(migration, c, 1)
    assert web_nodes(c) == ["miniserver", "miniserver"]  # two replicas, still primary-only
    spec = web_spec(c)["template"]["spec"]
    assert "tolerations" not in spec and "workload-lane" not in spec.get("nodeSelector", {})
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["primary"]

    second = stage(migration, c, 2)
    assert web_nodes(c) == ["miniserver", "worker-1"]  # the real scheduler's outcome
    spec = web_spec(c)["template"]["spec"]
    assert {"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"} in spec["tolerations"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in spec["affinity"]["podAntiAffinity"]

    undo(migration, c, second)
    assert web_nodes(c) == ["miniserver", "miniserver"]
    undo(migration, c, first)
    assert web_nodes(c) == ["miniserver"]
    after = web_spec(c)
    for field in ("replicas", "strategy"):
        assert after[field] == before[field], field
    for field in ("affinity", "tolerations", "topologySpreadConstraints", "nodeSelector"):
        assert after["template"]["spec"].get(field) == before["template"]["spec"].get(field), field


def test_an_app_failing_a_gate_is_refused_before_approval(migration, two_node):
    c = two_node
    offset = audit_size(c)
    run = migration(app={"namespace": "apps", "workload": "homarr"}, strategy="active_active", stage=1,
                    approve_plan="0000000000000000")
    assert run.rc != 0
    assert "Refused before the approval gate" in run.stdout
    assert "PodDisruptionBudget present and appropriate: no PodDisruptionBudget selects the app's pods" in run.stdout
    assert writes(c, offset) == []
