"""playbooks/capi_rollout.yml (runbook 004) on the talos-capi cluster, with the CAPI/Talos
simulator, the LINSTOR controller simulator and the talosctl stand-in: the happy path in
the runbook's order, the failure paths (faulty LINSTOR, blocked evacuation, a resync that
never settles), the guards, the lock, validate_gitops and check mode."""

import datetime
import json
import re
import sys
import threading
import time
from pathlib import Path

import pytest

from linstor_simulator import LinstorSimulator
from observe import LANE_TAINT, LANES, audit_entries, audit_size, evidence_runner, newest_evidence, writes
from proof import described, record

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "playbooks/capi_rollout.yml"
ROLLBACK = "playbooks/capi_rollout_rollback.yml"
TALOSCTL = str(ROOT / "tests" / "simulators" / "talosctl_simulator.py")
IPS = {"10.10.0.11": "cp-1", "10.10.0.21": "worker-1", "10.10.0.22": "worker-2"}
MUTEX = "capi-rollout-homelab-homelab"  # the rollout lock's Lease and the runbook's Argo mutex
RESOURCES = {"pvc-a": ["cp-1", "worker-1"], "pvc-b": ["worker-1", "worker-2"], "pvc-c": ["cp-1", "worker-2"]}


@pytest.fixture
def playbook_identity(identity):
    """Every playbook here runs as the capi-rollout family's ServiceAccount (rbac/capi-rollout.yml), with
    its token in K8S_AUTH_* as AWX's Kubernetes credential passes it."""
    return identity("capi-rollout")


@pytest.fixture
def rig(talos_capi, run_playbook, tmp_path):
    sim = talos_capi
    c = sim.cluster
    linstor = LinstorSimulator(list(IPS.values()), RESOURCES, sync_seconds=1.0, delete_seconds=0.3).start()
    log = tmp_path / "talosctl.jsonl"
    talosconfig = tmp_path / "talosconfig.json"
    talosconfig.write_text(json.dumps({
        "nodes": IPS, "python": sys.executable, "localcluster": str(ROOT / "tests" / "cluster" / "localcluster.py"),
        "kubeconfig": str(c.kubeconfig), "reboot_seconds": 1.5, "log": str(log), "linstor": linstor.url}))
    run = evidence_runner(run_playbook, c, tmp_path / "evidence", PLAYBOOK, inventory="local-talos-capi",
                          capi_rollout_talosctl=TALOSCTL, capi_rollout_talosconfig=str(talosconfig),
                          capi_rollout_linstor_controller_url=linstor.url, capi_rollout_poll_interval=0.3,
                          capi_rollout_reboot_timeout="60s", capi_rollout_delete_timeout="20s",
                          capi_rollout_ready_timeout="60s", capi_rollout_rollout_timeout="60s",
                          capi_rollout_linstor_evacuation_timeout="30s", capi_rollout_linstor_settle_timeout="30s")

    class Rig:
        pass

    r = Rig()
    r.sim, r.c, r.linstor, r.run = sim, c, linstor, run
    r.talosconfig = talosconfig

    def talos_log():
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    # the reboots; the read-only reachability probes (talosctl -n <ip> version) apart
    r.talos_calls = lambda: [x for x in talos_log() if "version" not in x["argv"]]
    r.talos_probes = lambda: [x for x in talos_log() if "version" in x["argv"]]
    r.machine_deletes = lambda since: [e for e in writes(c, since, "machines") if e["verb"] == "delete"]
    yield r
    linstor.stop()
    for m in sim.machines():
        sim.mark_unhealthy(m["metadata"]["name"], healthy=True)
    c.kubectl("delete", "lease", "-n", "homelab", "--all", check=False)


def hold_lease(c, holder):
    """The rollout lock held by another live run, ``holder``, renewed just now for 600 s."""
    c.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": MUTEX, "namespace": "homelab"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 600,
                 "renewTime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}))


def on_node(sim, node):
    return next(m["metadata"]["name"] for m in sim.machines()
                if (m.get("status") or {}).get("nodeRef", {}).get("name") == node)


def plan_of(run, check):
    assert check.rc == 0, check.stdout[-3000:]
    return json.loads((newest_evidence(run.evidence, "capi_rollout") / "plan.json").read_text())


def test_happy_path_in_the_runbooks_order(rig):
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    target = on_node(sim, "worker-1")
    # worker-1 in its lane, as runbook 000 leaves it: CAPI deletes the Node with the Machine, and
    # the new registration has neither the lane label nor the taint unless the run puts them back
    lane = "%s=%s" % (LANES["label"], LANES["secondary"])
    c.kubectl("label", "node", "worker-1", lane, "--overwrite")
    c.kubectl("taint", "node", "worker-1", lane + ":" + LANES["effect"], "--overwrite")
    uid = c.get_json("node", "worker-1")["metadata"]["uid"]
    sim.mark_unhealthy(target)
    offset = audit_size(c)
    check = run(check=True)
    plan = plan_of(run, check)
    check_writes = simulated_writes(rig, offset, 0, 0)
    assert check_writes == []
    assert [i["step"] for i in plan["items"]] == ["linstor-evacuate", "delete-machine", "reboot",
                                                  "linstor-restore-settle"]
    assert plan["items"][0] == {"step": "linstor-evacuate", "node": "worker-1", "storage_pool": "lvm-thick",
                                "resources": ["pvc-a", "pvc-b"]}
    assert plan["items"][1]["machine"] == target
    assert plan["items"][2]["carry"] == {"labels": {"homelab.k8s-ha/fixture": "talos-capi", LANES["label"]: LANES["secondary"]},
                                         "taints": [LANE_TAINT]}
    said = " ".join(check.stdout.split())
    assert ("wait until worker-1 is Ready, and put back on it what a Node CAPI deleted with its Machine lacks when it"
            " registers again: labels homelab.k8s-ha/fixture=talos-capi, %s; taints %s:%s" % (lane, lane, LANES["effect"])) \
        in said, said[-3000:]
    assert "node evacuate worker-1" in "\n".join(plan["report"])

    start = linstor.now()
    apply = run(approve_plan=plan["id"])
    assert apply.rc == 0, apply.stdout[-4000:]
    folder = newest_evidence(run.evidence, "capi_rollout")
    verify = json.loads((folder / "verify.json").read_text())
    assert [x["passed"] for x in verify["checks"]] == [True, True, True, True], verify
    assert verify["checks"][1] == {"name": "node worker-1 carries its labels and taints again", "passed": True,
                                   "detail": "labels homelab.k8s-ha/fixture=talos-capi, %s; taints %s:%s"
                                   % (lane, lane, LANES["effect"])}
    # a new Node object (CAPI deleted the old one), with the lane back
    node = c.get_json("node", "worker-1")
    assert node["metadata"]["uid"] != uid and node["metadata"]["labels"][LANES["label"]] == LANES["secondary"]
    assert LANE_TAINT in [{k: t.get(k) for k in ("key", "value", "effect")} for t in node["spec"]["taints"]]
    assert [e["event"] for e in sim.events("node-drained", "node-deleted") if e["node"] == "worker-1"] == [
        "node-drained", "node-deleted"]
    after = json.loads((folder / "after.json").read_text())
    replacement = after["replacement"]
    assert replacement and sim.machine(target) is None
    assert sim.machine(replacement)["status"]["nodeRef"]["name"] == "worker-1"
    assert linstor.on_node("worker-1") == [] and linstor.nodes["worker-1"]["flags"] == []
    # one line per phase, as each starts, in the runbook's order
    assert phases(apply.stdout) == [
        "LINSTOR, step 3: send the evacuation (refuses on a faulty resource) of worker-1",
        "LINSTOR, step 3: wait until the node has no resource left of lvm-thick on worker-1",
        "Machine, step 4: delete it and wait until it is gone: %s" % target,
        "Machine, step 5: reboot the node with talosctl: worker-1",
        "Machine, step 5: wait until the node is Ready: worker-1",
        "Machine, step 7: wait until the rollout has its machines back, the replacement on worker-1",
        "LINSTOR, step 6: restore worker-1",
        "LINSTOR, step 6: wait until it has settled, then check it again"]
    assert {e["phase"] for e in after["evacuate"]} == {"evacuate sent", "resources gone"}
    assert list(dict.fromkeys(e["phase"] for e in after["remediate"])) == [
        "delete", "reboot", "node_ready", "rollout"]

    # the order, from the simulators' logs: evacuate, resources gone, delete, reboot, restore, settle
    puts = [(p["path"], p["t"]) for p in linstor.puts()]
    assert [p for p, _t in puts] == ["/v1/nodes/worker-1/evacuate", "/v1/nodes/worker-1/restore"]
    gone = max(e["t"] for e in linstor.history if e["event"] == "deleted" and e["node"] == "worker-1")
    deleted = next(e["t"] for e in sim.events("machine-deleted") if e["machine"] == target)
    reboot = rig.talos_calls()[0]["t"]
    assert start < puts[0][1] < gone
    assert rig_wall(linstor, gone) < deleted < reboot < rig_wall(linstor, puts[1][1])
    assert "10.10.0.21" in rig.talos_calls()[0]["argv"]
    assert c.kubectl("get", "lease", "-n", "homelab", "-o", "name").stdout.strip() == ""  # released

    # the same apply again: no machine needs remediation, so nothing is planned or written
    offset, puts, calls = audit_size(c), len(linstor.puts()), len(rig.talos_calls())
    again = run(approve_plan=plan["id"])
    assert again.rc == 0, again.stdout[-3000:]
    assert json.loads((newest_evidence(run.evidence, "capi_rollout") / "plan.json").read_text())["items"] == []
    record("capi_rollout, happy path", "no rollback: CAPI replaced the Machine (a deleted Machine does not come "
           "back) and the run restored the LINSTOR node itself", check_writes=check_writes,
           again_writes=simulated_writes(rig, offset, puts, calls))
    c.kubectl("label", "node", "worker-1", LANES["label"] + "-")
    c.kubectl("taint", "node", "worker-1", "%s:%s-" % (LANES["label"], LANES["effect"]))


def simulated_writes(rig, offset, puts, calls):
    """Writes to the API server (audit log) and to the simulators (LINSTOR PUTs, talosctl
    calls) since ``offset``, ``puts`` and ``calls``, one line each."""
    return (described(writes(rig.c, offset))
            + ["LINSTOR PUT " + p["path"] for p in rig.linstor.puts()[puts:]]
            + ["talosctl " + " ".join(x["argv"]) for x in rig.talos_calls()[calls:]])


def phases(stdout):
    """The phase tasks' headers the run printed, in order."""
    return re.findall(r"^TASK \[[^\]]*: ((?:LINSTOR|Machine), step .*)\] \**$", stdout, re.M)


def rig_wall(linstor, t):
    """A LINSTOR simulator time (seconds since its start) as wall-clock time."""
    import time
    return time.time() - (linstor.now() - t)


def test_faulty_linstor_aborts_before_any_delete_or_reboot(rig):
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    sim.mark_unhealthy(on_node(sim, "worker-2"))
    plan = plan_of(run, run(check=True))
    linstor.set_fault(faulty=["pvc-a@cp-1"])
    offset = audit_size(c)
    apply = run(approve_plan=plan["id"])
    assert apply.rc != 0
    # the apply's own read of LINSTOR (step 3's health check) stops it, before the gate even
    # (linstor_evacuate's evacuate action refuses too: tests/integration/test_linstor_evacuate.py)
    assert "LINSTOR is not healthy: 1 faulty resource(s)" in apply.stdout and "pvc-a on cp-1: Outdated" in apply.stdout
    assert rig.machine_deletes(offset) == [] and rig.talos_calls() == [] and linstor.puts() == []
    assert c.kubectl("get", "lease", "-n", "homelab", "-o", "name").stdout.strip() == ""
    check = run(check=True)
    assert check.rc != 0 and "LINSTOR is not healthy" in check.stdout


@pytest.mark.parametrize("case", ["missing", "unreachable"])
def test_a_talosctl_that_cannot_reboot_the_node_stops_the_plan_before_any_destructive_call(rig, case):
    """The reboot (step 5) comes after the LINSTOR evacuation and the Machine's delete; a
    talosctl that is not there, or that does not reach the node, would fail only then. The
    plan runs it first, read-only (talosctl -n <ip> version): the check run and the apply
    both stop before the gate, with no LINSTOR PUT, no delete, no reboot and no Lease."""
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    sim.mark_unhealthy(on_node(sim, "worker-2"))
    extra = {}
    if case == "missing":
        extra["capi_rollout_talosctl"] = "/nonexistent/talosctl"
        said = ("talosctl: /nonexistent/talosctl is not an executable file (option talosctl, capi_rollout_talosctl "
                "in the role); the reboot of worker-2 would fail after its Machine was deleted, so nothing was changed")
    else:
        rig.talosconfig.write_text(json.dumps(dict(json.loads(rig.talosconfig.read_text()), fault="unreachable")))
        said = "talosctl does not reach node worker-2 at 10.10.0.22 ("
    try:
        offset, puts, calls = audit_size(c), len(linstor.puts()), len(rig.talos_calls())
        check = run(check=True, **extra)
        assert check.rc != 0 and said in " ".join(check.stdout.split()), check.stdout[-3000:]
        apply = run(approve_plan="0123456789abcdef", **extra)
        assert apply.rc != 0 and said in " ".join(apply.stdout.split()), apply.stdout[-3000:]
        assert simulated_writes(rig, offset, puts, calls) == []
        assert c.kubectl("get", "lease", "-n", "homelab", "-o", "name").stdout.strip() == ""
        if case == "unreachable":
            assert [x["argv"][-3:] for x in rig.talos_probes()[-2:]] == [["-n", "10.10.0.22", "version"]] * 2
    finally:
        if case == "unreachable":
            config = json.loads(rig.talosconfig.read_text())
            config.pop("fault")
            rig.talosconfig.write_text(json.dumps(config))


def test_blocked_evacuation_aborts_at_its_timeout_before_the_delete_and_the_rollback_restores(rig):
    """worker-2's volumes are in use there (a pod still mounts them): LINSTOR copies them but
    keeps the sources, so the evacuation's wait runs out before any delete or reboot."""
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    sim.mark_unhealthy(on_node(sim, "worker-2"))
    linstor.set_fault(in_use=["worker-2"])
    flags_before = {n: v["flags"] for n, v in linstor.nodes.items()}
    offset = audit_size(c)
    plan = plan_of(run, run(check=True, capi_rollout_linstor_evacuation_timeout="3s"))
    check_writes = simulated_writes(rig, offset, 0, 0)
    offset = audit_size(c)
    apply = run(approve_plan=plan["id"], capi_rollout_linstor_evacuation_timeout="3s")
    assert apply.rc != 0 and "evacuation of worker-2 did not finish within 3s" in apply.stdout
    assert phases(apply.stdout) == ["LINSTOR, step 3: send the evacuation (refuses on a faulty resource) of worker-2",
                                    "LINSTOR, step 3: wait until the node has no resource left of lvm-thick on worker-2"]
    assert rig.machine_deletes(offset) == [] and rig.talos_calls() == []
    run_dir = newest_evidence(run.evidence, "capi_rollout")
    rollback = json.loads((run_dir / "rollback.json").read_text())
    assert rollback["linstor_node"] == "worker-2"
    assert linstor.nodes["worker-2"]["flags"] == ["EVACUATE"]

    # capi_rollout_rollback.yml restores the node that run left evacuated: check, approve, run
    puts, offset = len(linstor.puts()), audit_size(c)
    check = run(ROLLBACK, check=True, rollback_from=str(run_dir))
    assert check.rc == 0, check.stdout[-3000:]
    rollback_check_writes = simulated_writes(rig, offset, puts, len(rig.talos_calls()))
    undo = json.loads((newest_evidence(run.evidence, "capi_rollout_rollback") / "plan.json").read_text())
    assert undo["items"] == [{"object": "LinstorNode/worker-2", "action": "restore", "flags": ["EVACUATE"], "then": "settle"}]
    assert len(linstor.puts()) == puts and linstor.nodes["worker-2"]["flags"] == ["EVACUATE"]
    refused = run(ROLLBACK, rollback_from=str(run_dir), approve_plan="0000000000000000")
    assert refused.rc != 0 and "Not approved" in refused.stdout and len(linstor.puts()) == puts
    done = run(ROLLBACK, rollback_from=str(run_dir), approve_plan=undo["id"])
    assert done.rc == 0, done.stdout[-3000:]
    assert [p["path"] for p in linstor.puts()[puts:]] == ["/v1/nodes/worker-2/restore"]
    assert linstor.nodes["worker-2"]["flags"] == []
    assert c.kubectl("get", "lease", "-n", "homelab", "-o", "name").stdout.strip() == ""
    flags_after = {n: v["flags"] for n, v in linstor.nodes.items()}
    record("capi_rollout, stopped at the evacuation + its rollback", "no repeat: the run stops by design "
           "(a blocked evacuation); the rollback restores the LINSTOR node it left evacuated",
           check_writes=check_writes, rollback_check_writes=rollback_check_writes,
           rollback_diff=["LINSTOR node %s: flags were %s, are %s" % (n, flags_before.get(n), flags_after.get(n))
                          for n in sorted(set(flags_before) | set(flags_after))
                          if flags_before.get(n) != flags_after.get(n)])


def test_a_run_stopped_after_the_delete_leaves_the_nodes_lane_to_its_rollback(rig):
    """talosctl fails after CAPI deleted the Machine and its Node: the run stops with worker-1
    evacuated in LINSTOR and, once the host has registered the node again, without its lane
    label and taint. The rollback that run's report names restores the LINSTOR node and puts
    the lane back."""
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    target = on_node(sim, "worker-1")
    lane = "%s=%s" % (LANES["label"], LANES["secondary"])
    c.kubectl("label", "node", "worker-1", lane, "--overwrite")
    c.kubectl("taint", "node", "worker-1", lane + ":" + LANES["effect"], "--overwrite")
    sim.mark_unhealthy(target)
    lane_before = lane_of(c, "worker-1")
    flags_before = {n: v["flags"] for n, v in linstor.nodes.items()}
    config = json.loads(rig.talosconfig.read_text())
    rig.talosconfig.write_text(json.dumps(dict(config, fault="fail")))
    try:
        offset = audit_size(c)
        plan = plan_of(run, run(check=True))
        check_writes = simulated_writes(rig, offset, 0, 0)
        stopped = run(approve_plan=plan["id"])
    finally:
        rig.talosconfig.write_text(json.dumps(config))
    assert stopped.rc != 0 and "talosctl reboot of worker-1 (10.10.0.21) failed" in stopped.stdout, stopped.stdout[-3000:]
    assert sim.machine(target) is None and c.api_get("/api/v1/nodes/worker-1")[0] == 404
    run_dir = newest_evidence(run.evidence, "capi_rollout")
    record_ = json.loads((run_dir / "rollback.json").read_text())
    assert record_["linstor_node"] == "worker-1"
    assert record_["node_carry"] == {"node": "worker-1", "labels": {"homelab.k8s-ha/fixture": "talos-capi",
                                                                    LANES["label"]: LANES["secondary"]},
                                     "taints": [LANE_TAINT]}
    report = " ".join((run_dir / "report.md").read_text().split())
    assert "after CAPI deleted the Machine and its Node: the node registers again without its labels and taints, " \
           "which the rollback puts back" in report, report

    # before the host is back, the rollback's plan says it cannot put the lane back yet
    check = run(ROLLBACK, check=True, rollback_from=str(run_dir))
    assert check.rc == 0, check.stdout[-3000:]
    assert "node worker-1 has not registered again yet (CAPI deleted it with the Machine): run this rollback " \
           "again once it has" in " ".join(check.stdout.split())
    # the host comes back: its kubelet registers a bare Node, CAPI's replacement takes it
    sim.adopt_replacements()
    assert LANES["label"] not in c.get_json("node", "worker-1")["metadata"]["labels"]
    puts, offset = len(linstor.puts()), audit_size(c)
    check = run(ROLLBACK, check=True, rollback_from=str(run_dir))
    assert check.rc == 0, check.stdout[-3000:]
    rollback_check_writes = simulated_writes(rig, offset, puts, len(rig.talos_calls()))
    undo = json.loads((newest_evidence(run.evidence, "capi_rollout_rollback") / "plan.json").read_text())
    assert undo["items"] == [
        {"object": "LinstorNode/worker-1", "action": "restore", "flags": ["EVACUATE"], "then": "settle"},
        {"object": "Node/worker-1", "action": "put back", "labels": {LANES["label"]: LANES["secondary"]},
         "taints": [LANE_TAINT]}]
    done = run(ROLLBACK, rollback_from=str(run_dir), approve_plan=undo["id"])
    assert done.rc == 0, done.stdout[-3000:]
    verify = json.loads((newest_evidence(run.evidence, "capi_rollout_rollback") / "verify.json").read_text())
    assert [ch["name"] for ch in verify["checks"] if ch["passed"]] == [
        "LINSTOR node worker-1 restored", "LINSTOR settled and no faulty resource",
        "node worker-1 carries its labels and taints again"], verify
    node = c.get_json("node", "worker-1")
    assert node["metadata"]["labels"][LANES["label"]] == LANES["secondary"]
    assert LANE_TAINT in [{k: t.get(k) for k in ("key", "value", "effect")} for t in node["spec"]["taints"]]
    assert linstor.nodes["worker-1"]["flags"] == []
    # the rollback's diff: the node's own labels and taints (a new Node object, so these are what
    # can be compared) and the LINSTOR flags, each as before the run
    lane_after = lane_of(c, "worker-1")
    flags_after = {n: v["flags"] for n, v in linstor.nodes.items()}
    record("capi_rollout, stopped after the delete + its rollback", "no repeat: the run stops by design (talosctl "
           "fails after CAPI deleted the Machine and its Node); the rollback restores the LINSTOR node and puts back "
           "the node's labels and taints", check_writes=check_writes, rollback_check_writes=rollback_check_writes,
           rollback_diff=["node worker-1 %s: was %s, is %s" % (k, lane_before[k], lane_after[k])
                          for k in lane_before if lane_before[k] != lane_after[k]]
           + ["LINSTOR node %s: flags were %s, are %s" % (n, flags_before.get(n), flags_after.get(n))
              for n in sorted(set(flags_before) | set(flags_after)) if flags_before.get(n) != flags_after.get(n)])
    c.kubectl("label", "node", "worker-1", LANES["label"] + "-")
    c.kubectl("taint", "node", "worker-1", "%s:%s-" % (LANES["label"], LANES["effect"]))


def lane_of(c, node):
    """The labels and taints of ``node`` that a new registration does not bring back (those
    a person or a playbook set), as the run records them."""
    n = c.get_json("node", node)
    kubelet = ("kubernetes.io/", "beta.kubernetes.io/")  # the kubelet's own (and kwok's, as one)
    return {"labels": {k: v for k, v in n["metadata"].get("labels", {}).items() if not k.startswith(kubelet)},
            "taints": sorted((t["key"], t.get("value", ""), t["effect"]) for t in n["spec"].get("taints") or []
                             if not t["key"].startswith("node.kubernetes.io/"))}


def test_a_resync_that_never_settles_fails_explicitly_after_the_reboot(rig):
    sim, linstor, run = rig.sim, rig.linstor, rig.run
    target = on_node(sim, "worker-2")
    sim.mark_unhealthy(target)
    linstor.set_fault(stuck_sync=["cp-1"])  # cp-1's replicas never finish resyncing after the restore
    plan = plan_of(run, run(check=True, capi_rollout_linstor_settle_timeout="4s"))
    apply = run(approve_plan=plan["id"], capi_rollout_linstor_settle_timeout="4s")
    assert apply.rc != 0 and "LINSTOR did not settle within 4s" in apply.stdout
    assert len(rig.talos_calls()) == 1 and sim.machine(target) is None  # after the reboot
    assert [p["path"] for p in linstor.puts()] == ["/v1/nodes/worker-2/evacuate", "/v1/nodes/worker-2/restore"]


def test_guards_lock_and_gitops_stop_before_anything(rig):
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    sim.mark_unhealthy(on_node(sim, "worker-1"))
    offset = audit_size(c)
    c.kubectl("patch", "taloscontrolplane", "homelab-cp", "-n", "homelab", "--type=merge",
              "-p", '{"spec":{"rolloutStrategy":{"rollingUpdate":{"maxSurge":1}}}}')
    try:
        check = run(check=True)
        assert check.rc != 0 and "spec.rolloutStrategy.rollingUpdate.maxSurge is 1" in check.stdout
    finally:
        c.kubectl("patch", "taloscontrolplane", "homelab-cp", "-n", "homelab", "--type=merge",
                  "-p", '{"spec":{"rolloutStrategy":{"rollingUpdate":{"maxSurge":0}}}}')

    bad = str(ROOT / "tests" / "fixtures" / "gitops-capi" / "bad")
    check = run(check=True, capi_rollout_gitops_overlays=[bad])
    assert check.rc != 0
    assert 'MachineDeployment homelab-workers: annotation argocd.argoproj.io/sync-wave is missing; needs \\"-1\\"' \
        in check.stdout or "MachineDeployment homelab-workers: annotation argocd.argoproj.io/sync-wave is missing" \
        in check.stdout
    good = str(ROOT / "tests" / "fixtures" / "gitops-capi" / "good")
    plan = plan_of(run, run(check=True, capi_rollout_gitops_overlays=[good]))

    # another live run holds the lock: this one stops, naming it
    hold_lease(c, "awx-job-7")
    apply = run(approve_plan=plan["id"], capi_rollout_gitops_overlays=[good])
    assert apply.rc != 0 and "held by awx-job-7" in apply.stdout
    assert rig.machine_deletes(offset) == [] and rig.talos_calls() == [] and linstor.puts() == []
    lease = json.loads(c.kubectl("get", "lease", "capi-rollout-homelab-homelab", "-n", "homelab", "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] == "awx-job-7"  # not released by the run that did not hold it


def test_a_run_that_waited_for_the_lock_refuses_a_plan_the_cluster_no_longer_matches(rig):
    """Approved, then waiting for the rollout lock another run holds: meanwhile that run's
    remediation makes worker-2 healthy again. Once this run takes the Lease it reads the plan
    again and refuses the approved one, naming what changed, with no LINSTOR PUT, no delete,
    no reboot; it releases the lock. (Before, it acted on its old plan.)"""
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    target = on_node(sim, "worker-2")
    sim.mark_unhealthy(target)
    plan = plan_of(run, run(check=True))
    c.kubectl("delete", "lease", MUTEX, "-n", "homelab", "--ignore-not-found")
    hold_lease(c, "awx-job-8")
    offset, puts, calls = audit_size(c), len(linstor.puts()), len(rig.talos_calls())
    done = {}
    waiting = threading.Thread(target=lambda: done.update(apply=run(
        approve_plan=plan["id"], capi_rollout_lock_wait_timeout=120)))
    waiting.start()
    try:
        # the run read the Lease another run holds: it waits
        deadline = time.monotonic() + 120
        while not [e for e in audit_entries(c, offset) if e.get("objectRef", {}).get("resource") == "leases"
                   and e["user"]["username"].endswith("homelab-capi-rollout")]:
            if not (time.monotonic() < deadline and waiting.is_alive()):
                waiting.join(timeout=300)
                users = sorted({(e["user"]["username"], e.get("objectRef", {}).get("resource")) for e in audit_entries(c, offset)})
                raise AssertionError("the run never asked for the lock: %s %s" % (users, done["apply"].stdout[-4000:]))
            time.sleep(0.2)
        sim.mark_unhealthy(target, healthy=True)  # what the other run's remediation did
        c.kubectl("delete", "lease", MUTEX, "-n", "homelab")  # ... and its release
    finally:
        waiting.join(timeout=300)
    apply = done["apply"]
    assert apply.rc != 0
    said = " ".join(apply.stdout.split())
    assert ("The cluster changed while this run waited for the rollout lock: the approved plan %s no longer holds"
            % plan["id"]) in said, apply.stdout[-3000:]
    assert "Nothing was changed; the lock is released. Check again and approve the new plan." in said
    sent = [w for w in simulated_writes(rig, offset, puts, calls) if "leases" not in w]
    assert sent == [], sent
    assert c.kubectl("get", "lease", MUTEX, "-n", "homelab", check=False).returncode != 0  # released


# --- runbook 004's own serialisation: the Argo mutex (issue 20.6) -------------------------

LEASE_STEPS = ROOT / "roles" / "capi_rollout" / "files" / "argo-workflows" / "capi-rollout-lease.yaml"


def remediation_workflow(c, name, phase, holding=None):
    """A Workflow of the runbook's WorkflowTemplate as the workflow controller leaves it (the
    upstream CRD keeps status as given: no status subresource)."""
    status = {"phase": phase}
    if holding:
        status["synchronization"] = {"mutex": {"holding": [{"mutex": m, "holder": name} for m in holding]}}
    c.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": name, "namespace": "argo"},
        "spec": {"workflowTemplateRef": {"name": "capi-rollout-orchestrator"},
                 "arguments": {"parameters": [{"name": "namespace", "value": "homelab"},
                                              {"name": "cluster", "value": "homelab"}]}},
        "status": status}))


def lease_step(template, workflow, **params):
    """The argv of a step of capi-rollout-lease.yaml with Argo's parameters filled in, as
    the workflow controller substitutes them."""
    import yaml  # pylint: disable=import-outside-toplevel
    doc = yaml.safe_load(LEASE_STEPS.read_text())
    step = next(t for t in doc["spec"]["templates"] if t["name"] == template)
    values = {p["name"]: p.get("value") for p in step["inputs"]["parameters"]}
    values.update(params)
    argv = step["container"]["command"] + step["container"]["args"]
    words = {"workflow.namespace": "argo", "workflow.name": workflow}
    words.update(("inputs.parameters." + k, v) for k, v in values.items())
    out = []
    for arg in argv:
        for key, value in words.items():
            arg = arg.replace("{{%s}}" % key, "%s" % value)
        assert "{{" not in arg, arg
        out.append(arg)
    return out


def test_a_running_remediation_workflow_of_the_runbook_stops_the_plan_and_the_apply_before_the_lease(rig):
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    sim.mark_unhealthy(on_node(sim, "worker-1"))
    plan = plan_of(run, run(check=True))
    try:
        # the TCP trigger submitted the runbook's WorkflowTemplate; the controller gave it the mutex
        remediation_workflow(c, "capi-rollout-orchestrator-x7k2p", "Running", holding=["argo/Mutex/" + MUTEX])
        offset = audit_size(c)
        check = run(check=True)
        message = ("runbook 004's own remediation is in flight: Workflow argo/capi-rollout-orchestrator-x7k2p"
                   " (Running) holds the mutex %s." % MUTEX)
        assert check.rc != 0 and message in check.stdout, check.stdout[-3000:]
        assert writes(c, offset) == []
        # the plan approved before the Workflow started: the apply stops before the Lease
        apply = run(approve_plan=plan["id"])
        assert apply.rc != 0 and message in apply.stdout, apply.stdout[-3000:]
        assert c.kubectl("get", "lease", "-n", "homelab", "-o", "name").stdout.strip() == ""
        assert rig.machine_deletes(offset) == [] and rig.talos_calls() == [] and linstor.puts() == []
        # once it has finished, the same plan runs
        remediation_workflow(c, "capi-rollout-orchestrator-x7k2p", "Succeeded", holding=["argo/Mutex/" + MUTEX])
        assert plan_of(run, run(check=True))["id"] == plan["id"]
    finally:
        c.kubectl("delete", "workflows", "-n", "argo", "--all", check=False)


def test_the_workflow_templates_lease_steps_and_the_playbook_exclude_each_other(rig, tmp_path):
    import os  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    # the API server takes the WorkflowTemplate as the file has it (upstream CRD)
    c.kubectl("apply", "--server-side", "-f", str(LEASE_STEPS))
    assert c.get_json("workflowtemplate", "capi-rollout-lease", "-n", "argo")["spec"]["templates"][0]["name"] == "take"
    # the steps' command, run here as the pod runs it: the same environment but this
    # checkout's ansible, Python and collection instead of the image's, and the kubeconfig
    # instead of the pod's token
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, K8S_AUTH_KUBECONFIG=str(c.kubeconfig),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".local" / "collections"),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

    def step(template, **params):
        return subprocess.run(lease_step(template, "capi-rollout-orchestrator-q9m4w", **params), cwd=str(tmp_path),
                              env=env, capture_output=True, text=True, check=False)

    sim.mark_unhealthy(on_node(sim, "worker-1"))
    plan = plan_of(run, run(check=True))
    try:
        took = step("take", namespace="homelab", cluster="homelab")
        assert took.returncode == 0, took.stdout + took.stderr
        lease = c.get_json("lease", MUTEX, "-n", "homelab")
        assert lease["spec"]["holderIdentity"] == "argo-workflow/argo/capi-rollout-orchestrator-q9m4w"
        assert lease["spec"]["leaseDurationSeconds"] == 10800
        offset = audit_size(c)
        apply = run(approve_plan=plan["id"])
        assert apply.rc != 0 and "held by argo-workflow/argo/capi-rollout-orchestrator-q9m4w" in apply.stdout
        assert rig.machine_deletes(offset) == [] and rig.talos_calls() == [] and linstor.puts() == []
        released = step("release", namespace="homelab", cluster="homelab")
        assert released.returncode == 0, released.stdout + released.stderr
        assert c.kubectl("get", "lease", "-n", "homelab", "-o", "name").stdout.strip() == ""
        # and the other way round: a playbook run holds the Lease, the Workflow's step fails naming it
        hold_lease(c, "awx-job-7")
        refused = step("take", namespace="homelab", cluster="homelab")
        assert refused.returncode != 0 and "is held by awx-job-7" in refused.stdout, refused.stdout
        assert c.get_json("lease", MUTEX, "-n", "homelab")["spec"]["holderIdentity"] == "awx-job-7"
    finally:
        c.kubectl("delete", "workflowtemplate", "capi-rollout-lease", "-n", "argo", check=False)


# --- CAPI's own remediation racing the run (issue 20.2) --------------------------------------

WORKERS_MHC = {
    "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineHealthCheck",
    "metadata": {"name": "homelab-workers", "namespace": "homelab"},
    "spec": {"clusterName": "homelab",
             "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": "homelab-workers"}},
             "checks": {"unhealthyNodeConditions": [
                 {"type": "Ready", "status": "Unknown", "timeoutSeconds": 300},
                 {"type": "Ready", "status": "False", "timeoutSeconds": 300}]}}}


def test_a_health_check_that_would_have_capi_replace_the_machine_stops_the_plan_until_the_machine_is_excluded(rig):
    import shlex  # pylint: disable=import-outside-toplevel
    sim, c, linstor, run = rig.sim, rig.c, rig.linstor, rig.run
    c.kubectl("apply", "-f", "-", input=json.dumps(WORKERS_MHC))
    target = on_node(sim, "worker-1")
    try:
        # the strict simulator: a worker the health check finds unhealthy is deleted by its
        # MachineSet at once, and nothing evacuates LINSTOR first
        other = on_node(sim, "worker-2")
        c.kubectl("annotate", "machines.cluster.x-k8s.io", other, "-n", "homelab", "cluster.x-k8s.io/remediate-machine=")
        sim.wait("the MachineSet deleted " + other, lambda: sim.machine(other) is None)
        assert [e["machine"] for e in sim.events("machineset-remediated")] == [other]
        assert linstor.puts() == [] and linstor.nodes["worker-2"]["flags"] == []
        sim.adopt_replacements()

        # the run's machine: its kubelet is gone; the health check's 300 s have not run out
        c.node_down("worker-1")
        sim.wait("worker-1 not Ready", lambda: not c.node_ready("worker-1"), timeout=90)
        offset = audit_size(c)
        check = run(check=True)
        assert check.rc != 0
        assert ("machine %s is watched by MachineHealthCheck homelab/homelab-workers: when its checks fail, its"
                " MachineSet replaces the Machine without the LINSTOR evacuation, racing this run." % target
                in check.stdout), check.stdout[-3000:]
        assert writes(c, offset) == [] and linstor.puts() == []
        command = re.search(r"kubectl -n homelab annotate machine \S+ cluster\.x-k8s\.io/skip-remediation=",
                            check.stdout).group(0)
        assert command == "kubectl -n homelab annotate machine %s cluster.x-k8s.io/skip-remediation=" % target
        c.kubectl(*shlex.split(command)[1:])  # what the message tells the operator to run, as given
        plan = plan_of(run, run(check=True))
        assert plan["items"][1] == {"step": "delete-machine", "machine": target,
                                    "uid": sim.machine(target)["metadata"]["uid"]}
        assert not [e for e in sim.events("mhc-unhealthy", "machineset-remediated") if e["machine"] == target]
    finally:
        c.kubectl("delete", "machinehealthchecks.cluster.x-k8s.io", "--all", "-n", "homelab", check=False)
        c.kubectl("annotate", "machines.cluster.x-k8s.io", target, "-n", "homelab",
                  "cluster.x-k8s.io/skip-remediation-", check=False)
        c.node_up("worker-1")
        sim.wait("worker-1 Ready", lambda: c.node_ready("worker-1"), timeout=90)
