"""app_migration.yml, strategy B (controlled_failover), on the two-node fixture with
worker-1 uncordoned but lane-tainted and the Longhorn simulator attaching the RWO volume
where the app's pod runs. Stage 1 makes notes-db-primary and notes-db-standby; failover
moves the single writer to worker-1 only after the primary pod is gone and the volume
detached; failback returns it; rollbacks undo both. A watch on the app's pods proves
that at no moment two of them were Running. Strategy C keeps the same app pinned to
miniserver and adds a replication sidecar, rolled back exactly. Every check run writes
nothing."""

import json

import pytest

from observe import LANE_TOLERATION, PodWatch, audit_size, check_then_apply, clear_lanes, evidence_runner, newest_evidence as newest, set_lanes, writes
from proof import proof

APPLY = "playbooks/app_migration.yml"
ROLLBACK = "playbooks/app_migration_rollback.yml"
PROBE = {"httpGet": {"path": "/", "port": 5432}}
LABEL = {"homelab.k8s-ha/fixture": "failover"}
DB = {"apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "notes-db", "namespace": "apps", "labels": LABEL},
      "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
               "selector": {"matchLabels": {"app": "notes-db"}},
               "template": {"metadata": {"labels": {"app": "notes-db"}}, "spec": {
                   "nodeSelector": {"workload-lane": "primary"},
                   "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "arr-config"}}],
                   "containers": [{"name": "db", "image": "registry.example/postgres:16",
                                   "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
                                   "readinessProbe": PROBE, "livenessProbe": PROBE}]}}}}
PDB = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
       "metadata": {"name": "notes-db", "namespace": "apps", "labels": LABEL},
       "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "notes-db"}}}}
APP = {"namespace": "apps", "workload": "notes-db"}


def running(c):
    """deployment -> nodes of its Running pods."""
    out = {}
    for p in c.get_json("pods", "-n", "apps", "-l", "app=notes-db")["items"]:
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"):
            owner = p["metadata"]["ownerReferences"][0]["name"].rsplit("-", 1)[0]
            out.setdefault(owner, []).append(p["spec"]["nodeName"])
    return out


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the app-migration family's ServiceAccount (rbac/app-migration.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("app-migration")


@pytest.fixture
def failover(longhorn, run_playbook, tmp_path):
    c = longhorn.cluster
    set_lanes(c, uncordon=True)
    # runbook 001 done for this volume: a replica on each node
    c.kubectl("patch", "volumes.longhorn.io", "pvc-arr", "-n", "longhorn-system", "--type", "merge",
              "-p", '{"spec": {"numberOfReplicas": 2}}')
    longhorn.wait("pvc-arr on both nodes", lambda: longhorn.replica_nodes().get("pvc-arr") == ["miniserver", "worker-1"]
                  and longhorn.volumes()["pvc-arr"]["status"]["robustness"] == "healthy")
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [DB, PDB]}))
    c.kubectl("rollout", "status", "-n", "apps", "deployment/notes-db", "--timeout=60s")
    longhorn.wait("pvc-arr attached to miniserver", lambda: longhorn.volumes()["pvc-arr"]["status"].get(
        "currentNodeID") == "miniserver" and longhorn.volumes()["pvc-arr"]["status"]["state"] == "attached")
    run = evidence_runner(run_playbook, c, tmp_path / "evidence", APPLY)
    yield run
    c.kubectl("delete", "deployment,pdb", "-n", "apps", "-l", "homelab.k8s-ha/fixture=failover", "--wait=true")
    c.kubectl("delete", "deployment", "-n", "apps", "notes-db-primary", "notes-db-standby", "--ignore-not-found",
              "--wait=true")
    clear_lanes(c)


def checked_then_applied(run, c, playbook=APPLY, name="app_migration", **args):
    return check_then_apply(run, c, playbook, name, **args)


def stage(run, c, number):
    plan, run_dir = checked_then_applied(run, c, app=APP, migration_strategy="controlled_failover", stage=number)
    verify = json.loads((run_dir / "verify.json").read_text())
    assert verify["checks"] and all(chk["passed"] for chk in verify["checks"]), verify
    return plan, run_dir


def proved(run, c, number, label):
    """The safety proof of one stage of strategy B (proof.py's row ``app_migration B <label>``);
    the body runs with the stage applied and verified, and its end rolls the stage back."""
    return proof(run, c, "app_migration B " + label, APPLY, "app_migration", ROLLBACK, "app_migration_rollback",
                 app=APP, migration_strategy="controlled_failover", stage=number)


def verified(p):
    verify = json.loads((p.run_dir / "verify.json").read_text())
    assert verify["checks"] and all(chk["passed"] for chk in verify["checks"]), verify


def undo(run, c, run_dir):
    checked_then_applied(run, c, ROLLBACK, "app_migration_rollback", rollback_from=str(run_dir))


def test_strategy_b_failover_and_failback_keep_one_writer(failover, longhorn):
    """Stage 1, failover and failback, each proved (check, apply, the same apply again with no
    write, rollback to the state before it), nested: failback inside failover inside stage 1."""
    c = longhorn.cluster
    with PodWatch(c, "apps", "app=notes-db") as watch:
        with proved(failover, c, 1, "stage 1") as first:
            verified(first)
            assert sorted(i["object"] + " " + i["module"] for i in first.plan["items"]) == [
                "Deployment/notes-db-primary homelab.k8s_ha.deployment_handover",
                "Deployment/notes-db-primary kubernetes.core.k8s",
                "Deployment/notes-db-standby kubernetes.core.k8s"]
            assert running(c) == {"notes-db-primary": ["miniserver"]}
            standby = c.get_json("deployment", "notes-db-standby", "-n", "apps")["spec"]
            assert standby["replicas"] == 0
            assert LANE_TOLERATION in standby["template"]["spec"]["tolerations"]

            with proved(failover, c, "failover", "failover") as over:
                verified(over)
                assert running(c) == {"notes-db-standby": ["worker-1"]}
                # the single writer moved only after the primary pod was gone and the volume detached
                assert watch.last("DELETED", "notes-db-primary") < watch.first("ADDED", "notes-db-standby")
                events = [e for e in longhorn.history() if e.get("volume") == "pvc-arr"]
                detached = max(e["t"] for e in events if e["event"] == "detached" and e["node"] == "miniserver")
                assert detached < watch.first("ADDED", "notes-db-standby")
                assert longhorn.volumes()["pvc-arr"]["status"]["currentNodeID"] == "worker-1"
                # kube-controller-manager's VolumeAttachment moved with it: the one on miniserver
                # was gone (detached, then released by the attacher) before the standby's pod existed
                released = [e["t"] for e in longhorn.history() if e["event"] == "attachment-released"
                            and e.get("volume") == "pvc-arr" and e["node"] == "miniserver"]
                assert released and max(released) < watch.first("ADDED", "notes-db-standby")
                longhorn.wait("pvc-arr's VolumeAttachment on worker-1 only", lambda: sorted(
                    (a["spec"]["nodeName"], (a.get("status") or {}).get("attached"))
                    for a in longhorn.attachments("pvc-arr")) == [("worker-1", True)])

                with proved(failover, c, "failback", "failback") as back:
                    verified(back)
                    assert running(c) == {"notes-db-primary": ["miniserver"]}
                    assert watch.last("DELETED", "notes-db-standby") < watch.last("ADDED", "notes-db-primary")
                # the rollback of the failback: the writer on the standby again
                assert running(c) == {"notes-db-standby": ["worker-1"]}
            # the runbook's rollback of a failover: standby to 0, primary to 1
            assert running(c) == {"notes-db-primary": ["miniserver"]}
        # and of stage 1: the app's own Deployment writes again, the pair is gone
        assert running(c) == {"notes-db": ["miniserver"]}
        assert c.kubectl("get", "deployment", "-n", "apps", "notes-db-primary", "notes-db-standby",
                         "--ignore-not-found", "-o", "name").stdout.strip() == ""
    assert watch.most == 1, watch.timeline
    # the attach/detach controller never had to refuse a second node for the RWO volume
    pods = set(name for _t, _ev, name, _n, _p in watch.timeline)
    assert pods and not [e["message"] for e in c.get_json("events", "-n", "apps")["items"]
                         if e["reason"] == "FailedAttachVolume" and e["involvedObject"]["name"] in pods]


def test_strategy_b_refusals(failover, longhorn):
    c = longhorn.cluster
    offset = audit_size(c)
    # a failover before stage 1 made the pair: nothing to fail over to
    run = failover(app=APP, migration_strategy="controlled_failover", stage="failover", approve_plan="0")
    assert run.rc != 0
    assert ("missing in namespace apps: notes-db-primary, notes-db-standby. Run stage 1 first. Nothing was changed."
            in run.stdout), run.stdout[-3000:]
    # strategy A on the RWO app: refused by the data-model class, with the reason
    run = failover(app=APP, migration_strategy="active_active", stage=1, approve_plan="0")
    assert run.rc != 0
    assert "strategy active_active runs two replicas writing at once" in run.stdout
    assert "rwo_single_writer" in run.stdout or "fragile_db" in run.stdout
    # a stage the strategy does not have
    run = failover(app=APP, migration_strategy="controlled_failover", stage=2)
    assert run.rc != 0
    assert "stage: \"2\" (allowed: 1, 2 for active_active; 1, failover, failback for controlled_failover" in run.stdout
    assert writes(c, offset) == []


SIDECAR = {"name": "replicate", "image": "registry.example/replicator:1", "args": ["--dest", "queue.apps.svc"],
           "resources": {"requests": {"cpu": "5m", "memory": "16Mi"}},
           "readinessProbe": {"tcpSocket": {"port": 9000}}, "livenessProbe": {"tcpSocket": {"port": 9000}}}


def test_strategy_c_pins_the_primary_and_adds_the_sidecar(failover, longhorn):
    c = longhorn.cluster
    before = c.get_json("deployment", "notes-db", "-n", "apps")["spec"]
    # refused before any write: no sidecar given
    offset = audit_size(c)
    run = failover(app=APP, migration_strategy="hybrid", stage=1, approve_plan="0")
    assert run.rc != 0 and "sidecar: a container spec with name and image is required" in run.stdout
    assert writes(c, offset) == []

    with proof(failover, c, "app_migration C", APPLY, "app_migration", ROLLBACK, "app_migration_rollback",
               app=APP, migration_strategy="hybrid", stage=1, sidecar=SIDECAR) as p:
        assert [i["object"] for i in p.plan["items"]] == ["Deployment/notes-db"]
        verify = json.loads((p.run_dir / "verify.json").read_text())
        assert all(chk["passed"] for chk in verify["checks"]), verify
        assert "sidecar replicate runs, Ready, in every pod" in [chk["name"] for chk in verify["checks"]]
        assert running(c) == {"notes-db": ["miniserver"]}
        pod = [x for x in c.get_json("pods", "-n", "apps", "-l", "app=notes-db")["items"]
               if not x["metadata"].get("deletionTimestamp")][0]
        assert [x["name"] for x in pod["spec"]["containers"]] == ["db", "replicate"]
        spec = c.get_json("deployment", "notes-db", "-n", "apps")["spec"]["template"]["spec"]
        assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["primary"]
        assert "tolerations" not in spec  # never opted in to the secondary lane
        # the same run again (proof.py) planned nothing and wrote nothing
        assert "changes nothing; nothing to approve" in p.again.stdout

    after = c.get_json("deployment", "notes-db", "-n", "apps")["spec"]["template"]["spec"]
    assert [x["name"] for x in after["containers"]] == ["db"]
    for field in ("affinity", "nodeSelector", "tolerations"):
        assert after.get(field) == before["template"]["spec"].get(field), field
    assert running(c) == {"notes-db": ["miniserver"]}


def test_a_volume_that_never_detaches_stops_the_failover_before_the_standby_starts(failover, longhorn):
    c = longhorn.cluster
    stage(failover, c, 1)
    longhorn.set_faults(stuck_attached=["pvc-arr"])
    offset = audit_size(c)
    args = dict(app=APP, migration_strategy="controlled_failover", stage="failover", app_migration_detach_timeout=5)
    check = failover(check=True, **args)  # the timeout is part of the plan the approval binds to
    assert check.rc == 0 and writes(c, offset) == []
    plan = json.loads((newest(failover.evidence, "app_migration") / "plan.json").read_text())
    with PodWatch(c, "apps", "app=notes-db") as watch:
        run = failover(approve_plan=plan["id"], **args)
        assert run.rc != 0
        assert "detaching not done within detach_timeout 5s" in run.stdout
        assert "Longhorn volume pvc-arr is attached on miniserver" in run.stdout
        # and kube-controller-manager's VolumeAttachment, deleted but held by the attacher
        assert "of pvc-arr on miniserver (attached: True)" in run.stdout
        held = longhorn.attachments("pvc-arr")
        assert len(held) == 1 and held[0]["metadata"].get("deletionTimestamp"), held
        assert "VolumeAttachment %s of pvc-arr on miniserver" % held[0]["metadata"]["name"] in run.stdout
        # the standby was never scaled up: no second writer, not even for a moment
        assert c.get_json("deployment", "notes-db-standby", "-n", "apps")["spec"]["replicas"] == 0
        assert not [name for _t, _ev, name, _n, _p in watch.timeline if name.startswith("notes-db-standby")]
        # the failed run's evidence holds the way back; the rollback takes it
        failed = newest(failover.evidence, "app_migration")
        assert json.loads((failed / "rollback.json").read_text())["handovers"] == [
            {"giver": "notes-db-standby", "name": "notes-db-primary", "replicas": 1, "namespace": "apps"}]
        longhorn.set_faults()
        undo(failover, c, failed)
        assert running(c) == {"notes-db-primary": ["miniserver"]}
    assert watch.most == 1, watch.timeline
