"""capi_machine_remediate on the real API server with the CAPI/Talos simulator and the
talosctl stand-in: the guards refuse before anything happens, check mode writes
nothing and reboots nothing, the remediation deletes, reboots and waits for the
rollout to get its machine back, and a Machine that never finishes deleting stops it
before the reboot."""

import json
import sys
from pathlib import Path

import pytest

from observe import LANE_TAINT, LANES, audit_size, writes
from upstream_crds import fetch

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = "tests/integration/playbooks/capi_modules.yml"
TALOSCTL = str(ROOT / "tests" / "simulators" / "talosctl_simulator.py")
IPS = {"10.10.0.11": "cp-1", "10.10.0.21": "worker-1", "10.10.0.22": "worker-2"}


@pytest.fixture
def talos(talos_capi, tmp_path):
    """The talosctl stand-in's configuration (passed as --talosconfig) and its call log."""
    c = talos_capi.cluster
    log = tmp_path / "talosctl.jsonl"
    cfg = {"nodes": IPS, "python": sys.executable, "localcluster": str(ROOT / "tests" / "cluster" / "localcluster.py"),
           "kubeconfig": str(c.kubeconfig), "reboot_seconds": 1.5, "log": str(log)}
    path = tmp_path / "talosconfig.json"

    class Talos:
        def configure(self, **extra):
            path.write_text(json.dumps(dict(cfg, **extra)))

        def _log(self):
            return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

        def calls(self):
            """The reboots (the read-only reachability probes are probes())."""
            return [x for x in self._log() if "version" not in x["argv"]]

        def probes(self):
            """``talosctl -n <ip> version``: the probe before anything destructive."""
            return [x for x in self._log() if "version" in x["argv"]]

    t = Talos()
    t.configure()
    t.path = str(path)
    return t


def remediate(run_playbook, sim, talos, check=False, **args):
    base = dict(namespace="homelab", cluster="homelab", talosctl=TALOSCTL, talosconfig=talos.path,
                poll_interval=0.5, reboot_timeout="60s", delete_timeout="20s", ready_timeout="60s",
                rollout_timeout="60s")
    base.update(args)
    r = run_playbook(sim.cluster, PLAYBOOK, extra_vars={"remediate_args": base}, check=check)
    assert r.result is not None, r.stdout + r.stderr
    return r.result


def on_node(sim, node):
    return next(m["metadata"]["name"] for m in sim.machines()
                if (m.get("status") or {}).get("nodeRef", {}).get("name") == node)


def machine_deletes(c, since):
    return [e for e in writes(c, since, "machines") if e["verb"] == "delete"]


def test_select_resolves_the_node_and_the_guards_refuse_before_anything(talos_capi, run_playbook, talos):
    sim, c = talos_capi, talos_capi.cluster
    r = remediate(run_playbook, sim, talos)
    assert not r.get("failed") and r["machine"] is None and r["capi_version"] == "cluster.x-k8s.io/v1beta2"

    target = on_node(sim, "worker-1")
    sim.mark_unhealthy(target)
    try:
        r = remediate(run_playbook, sim, talos)
        assert r["machine"]["name"] == target and r["machine"]["control_plane"] is False
        assert r["machine"]["reasons"] == ["HealthCheckSucceeded False (UnhealthyNode)"]
        assert (r["node"], r["ip"]) == ("worker-1", "10.10.0.21")
        assert r["talosctl"][-6:] == ["10.10.0.21", "reboot", "--mode=default", "--wait=true", "--timeout", "60s"]

        offset = audit_size(c)
        c.kubectl("patch", "taloscontrolplane", "homelab-cp", "-n", "homelab", "--type=merge",
                  "-p", '{"spec":{"rolloutStrategy":{"rollingUpdate":{"maxSurge":1}}}}')
        r = remediate(run_playbook, sim, talos, action="remediate")
        assert r["failed"] is True
        assert "TalosControlPlane homelab-cp: spec.rolloutStrategy.rollingUpdate.maxSurge is 1" in r["msg"]
        assert machine_deletes(c, offset) == [] and talos.calls() == []
        c.kubectl("patch", "taloscontrolplane", "homelab-cp", "-n", "homelab", "--type=merge",
                  "-p", '{"spec":{"rolloutStrategy":{"rollingUpdate":{"maxSurge":0}}}}')

        other = on_node(sim, "worker-2")
        sim.mark_unhealthy(other)
        r = remediate(run_playbook, sim, talos, action="remediate")
        assert r["failed"] is True and "2 worker machines are unavailable or deleting" in r["msg"]
        assert machine_deletes(c, offset) == [] and talos.calls() == []
    finally:
        for m in sim.machines():
            sim.mark_unhealthy(m["metadata"]["name"], healthy=True)


def test_check_mode_then_remediation_in_order(talos_capi, run_playbook, talos):
    sim, c = talos_capi, talos_capi.cluster
    target = on_node(sim, "worker-2")
    sim.mark_unhealthy(target)
    offset = audit_size(c)
    r = remediate(run_playbook, sim, talos, check=True, action="remediate")
    assert not r.get("failed"), (r.get("msg"), r.get("exception"), r.get("events"))
    assert r["changed"] is True and r["machine"]["name"] == target
    assert r["diff"]["after"]["Machine homelab/%s" % target] == "deleted"
    assert writes(c, offset) == [] and talos.calls() == []
    assert sim.machine(target) is not None

    r = remediate(run_playbook, sim, talos, action="remediate", machine=target, reboot_mode="powercycle")
    assert not r.get("failed"), (r.get("msg"), r.get("exception"), r.get("events"))
    assert r["changed"] is True and r["replacement"] and r["replacement"] != target
    assert sim.machine(target) is None
    new = sim.machine(r["replacement"])
    assert new["status"]["phase"] == "Running" and new["status"]["nodeRef"]["name"] == "worker-2"
    calls = talos.calls()
    assert [x["argv"][-6:] for x in calls] == [
        ["10.10.0.22", "reboot", "--mode=powercycle", "--wait=true", "--timeout", "60s"]]
    deleted = next(e["t"] for e in sim.events("machine-deleted") if e["machine"] == target)
    running = next(e["t"] for e in sim.events("machine-running") if e["machine"] == r["replacement"])
    assert deleted < calls[0]["t"] < running
    assert [e["verb"] for e in machine_deletes(c, offset)] == ["delete"]
    node = c.get_json("node", "worker-2")
    assert not node["spec"].get("unschedulable")

    again = remediate(run_playbook, sim, talos, action="remediate")
    assert again["machine"] is None and again["changed"] is False


def test_remediation_one_step_per_call(talos_capi, run_playbook, talos):
    """The steps capi_rollout runs as tasks of their own: delete (guards, select, delete,
    gone), reboot, node_ready, rollout; each later step from the delete step's result."""
    sim, c = talos_capi, talos_capi.cluster
    target = on_node(sim, "worker-1")
    # worker-1 in its lane, as runbook 000 leaves it (a label and a taint the kubelet does not set)
    lane = "%s=%s" % (LANES["label"], LANES["secondary"])
    c.kubectl("label", "node", "worker-1", lane, "--overwrite")
    c.kubectl("taint", "node", "worker-1", lane + ":" + LANES["effect"], "--overwrite")
    uid = c.get_json("node", "worker-1")["metadata"]["uid"]
    sim.mark_unhealthy(target)
    offset = audit_size(c)
    r = remediate(run_playbook, sim, talos, action="remediate", step="reboot", machine=target, node="worker-1")
    assert r["failed"] is True and "step reboot needs ip (from the delete step's result: ip)" in r["msg"]
    r = remediate(run_playbook, sim, talos, check=True, action="remediate", step="reboot", machine=target,
                  node="worker-1", ip="10.10.0.21")
    assert not r.get("failed") and r["changed"] is True, r.get("msg")
    assert writes(c, offset) == [] and talos.calls() == []

    deleted = remediate(run_playbook, sim, talos, action="remediate", step="delete", machine=target)
    assert not deleted.get("failed"), (deleted.get("msg"), deleted.get("events"))
    assert sim.machine(target) is None and talos.calls() == []
    assert (deleted["node"], deleted["ip"], deleted["machine"]["control_plane"]) == ("worker-1", "10.10.0.21", False)
    assert deleted["events"][-1]["event"] == "Machine %s deleted" % target and "replacement" not in deleted
    assert deleted["carry"] == {"labels": {"homelab.k8s-ha/fixture": "talos-capi", LANES["label"]: LANES["secondary"]},
                                "taints": [LANE_TAINT]}
    # CAPI drained the node and deleted the Node object with the Machine (reconcileDelete)
    assert [e["event"] for e in sim.events("node-drained", "node-deleted") if e["node"] == "worker-1"] == [
        "node-drained", "node-deleted"]
    after = dict(machine=target, node=deleted["node"])
    r = remediate(run_playbook, sim, talos, action="remediate", step="reboot", ip=deleted["ip"], **after)
    assert not r.get("failed") and r["changed"] is True, r.get("msg")
    assert [x["argv"][-6:-4] for x in talos.calls()] == [["10.10.0.21", "reboot"]]
    # the host registered a new Node: without the carry, node_ready finds it bare and leaves it so
    r = remediate(run_playbook, sim, talos, action="remediate", step="node_ready", **after)
    assert not r.get("failed") and r["changed"] is False and r["events"][-1]["event"] == "node worker-1 Ready"
    node = c.get_json("node", "worker-1")
    assert node["metadata"]["uid"] != uid
    assert LANES["label"] not in node["metadata"]["labels"] and LANE_TAINT not in [
        {k: t.get(k) for k in ("key", "value", "effect")} for t in node["spec"].get("taints") or []]
    # with the delete step's carry (what capi_rollout passes), it puts the lane back
    r = remediate(run_playbook, sim, talos, action="remediate", step="node_ready", carry=deleted["carry"], **after)
    assert not r.get("failed") and r["changed"] is True, r.get("msg")
    assert r["restored"] == {"labels": {LANES["label"]: LANES["secondary"]}, "taints": [LANE_TAINT]}
    node = c.get_json("node", "worker-1")
    assert node["metadata"]["labels"][LANES["label"]] == LANES["secondary"]
    assert LANE_TAINT in [{k: t.get(k) for k in ("key", "value", "effect")} for t in node["spec"]["taints"]]
    again = remediate(run_playbook, sim, talos, action="remediate", step="node_ready", carry=deleted["carry"], **after)
    assert again["changed"] is False and again["restored"] == {"labels": {}, "taints": []}
    r = remediate(run_playbook, sim, talos, action="remediate", step="rollout", control_plane=False, **after)
    assert not r.get("failed"), (r.get("msg"), r.get("events"))
    assert r["replacement"] and r["replacement"] != target
    assert sim.machine(r["replacement"])["status"]["nodeRef"]["name"] == "worker-1"
    assert [e["verb"] for e in machine_deletes(c, offset)] == ["delete"]
    c.kubectl("label", "node", "worker-1", LANES["label"] + "-")
    c.kubectl("taint", "node", "worker-1", "%s:%s-" % (LANES["label"], LANES["effect"]))


def test_a_machine_that_never_finishes_deleting_is_not_rebooted(talos_capi, run_playbook, talos):
    sim, c = talos_capi, talos_capi.cluster
    target = on_node(sim, "worker-1")
    sim.set_fault(stuck_deleting=[target])
    sim.mark_unhealthy(target)
    try:
        r = remediate(run_playbook, sim, talos, action="remediate", delete_timeout="4s")
        assert r["failed"] is True
        assert "is still deleting after 4s" in r["msg"] and "node worker-1 was NOT rebooted" in r["msg"]
        assert talos.calls() == []
    finally:
        sim.set_fault(stuck_deleting=[])
        sim.wait("the stuck machine gone and its replacement Running",
                 lambda: sim.machine(target) is None and len(sim.machines()) == 3, timeout=30)
        sim.adopt_replacements()


def test_v1beta1_field_paths(talos_capi, run_playbook, talos):
    """A MachineDeployment of a CAPI that stores v1beta1 (v1.10's CRD: spec.strategy.rollingUpdate),
    read as v1beta1. v1.11's CRD stores v1beta2, where spec.strategy does not exist: without the
    conversion webhook real CAPI runs, the API server would prune it (strategy None)."""
    sim, c = talos_capi, talos_capi.cluster
    crd = "machinedeployments.cluster.x-k8s.io"
    before = c.get_json("machinedeployments.v1beta2.cluster.x-k8s.io", "homelab-workers", "-n", "homelab")
    template = before["spec"]["template"]

    def with_crd(source, body):
        """The MachineDeployment CRD of ``source`` (upstream_crds.py) in place, and ``body`` in it."""
        c.kubectl("delete", "crd", crd, "--ignore-not-found", "--wait=true")
        c.kubectl("apply", "--server-side", "-f", str(next(fetch(source).glob("*-%s.yaml" % crd))))
        c.wait_established(crd)
        c.kubectl("create", "-f", "-", input=json.dumps(body))

    def v1beta1_ref(ref):  # v1beta1 names a template by apiVersion (an ObjectReference)
        return {"apiVersion": ref["apiGroup"] + "/v1alpha3", "kind": ref["kind"], "name": ref["name"]}

    def v1beta1_md(surge):
        return {
            "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineDeployment",
            "metadata": {"name": "homelab-workers", "namespace": "homelab"},
            "spec": {"clusterName": "homelab", "replicas": 2, "selector": before["spec"]["selector"],
                     "template": {"metadata": template["metadata"], "spec": {
                         "clusterName": "homelab", "version": template["spec"]["version"],
                         "bootstrap": {"configRef": v1beta1_ref(template["spec"]["bootstrap"]["configRef"])},
                         "infrastructureRef": v1beta1_ref(template["spec"]["infrastructureRef"])}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 1}}}}

    target = on_node(sim, "worker-1")
    sim.mark_unhealthy(target)
    try:
        with_crd("capi-v1beta1-machinedeployments", v1beta1_md(0))
        r = remediate(run_playbook, sim, talos, capi_version="v1beta1")
        assert not r.get("failed"), r.get("msg")
        assert r["capi_version"] == "cluster.x-k8s.io/v1beta1" and r["machine"]["name"] == target
        c.kubectl("replace", "-f", "-", input=json.dumps(v1beta1_md(1)))
        r = remediate(run_playbook, sim, talos, capi_version="v1beta1", action="remediate")
        assert r["failed"] is True
        assert "MachineDeployment homelab-workers (v1beta1): spec.strategy.rollingUpdate.maxSurge is 1; needs 0" \
            in r["msg"]
        assert talos.calls() == [] and sim.machine(target) is not None
    finally:
        sim.mark_unhealthy(target, healthy=True)
        with_crd("capi", {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineDeployment",
                          "metadata": {"name": "homelab-workers", "namespace": "homelab",
                                       "labels": before["metadata"].get("labels") or {}},
                          "spec": before["spec"]})


def test_a_pod_a_budget_holds_on_the_node_stops_the_remediation_before_any_write(talos_capi, run_playbook, talos):
    """CAPI drains a worker's node through the Eviction API before it deletes the Machine
    (reconcileDelete): a PodDisruptionBudget that allows no disruption holds the drain, and
    the Machine stays deleting, with the node already evacuated in LINSTOR. So the module
    refuses before any write, naming the budget and the pod; once the budget allows one,
    the same call goes on. The simulator's drain is held the same way (the negative case)."""
    sim, c = talos_capi, talos_capi.cluster
    db = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db", "namespace": "homelab"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                   "template": {"metadata": {"labels": {"app": "db"}},
                                "spec": {"nodeSelector": {"kubernetes.io/hostname": "worker-2"},
                                         "containers": [{"name": "db", "image": "postgres:16"}]}}}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db", "namespace": "homelab"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [db, pdb]}))
    target = on_node(sim, "worker-2")
    try:
        sim.wait("db Running on worker-2 and its budget at 0", lambda: any(
            p["status"].get("phase") == "Running" for p in c.get_json("pods", "-n", "homelab", "-l", "app=db")["items"])
            and c.get_json("pdb", "db", "-n", "homelab").get("status", {}).get("currentHealthy") == 1)
        pod = c.get_json("pods", "-n", "homelab", "-l", "app=db")["items"][0]["metadata"]["name"]
        sim.mark_unhealthy(target)
        offset = audit_size(c)
        r = remediate(run_playbook, sim, talos, action="remediate", machine=target)
        assert r["failed"] is True, r
        assert ("CAPI drains node worker-2 before it deletes Machine %s, and PodDisruptionBudget homelab/db allows no"
                " disruption of pod homelab/%s now (disruptionsAllowed 0)" % (target, pod)) in r["msg"], r["msg"]
        assert writes(c, offset) == [] and talos.calls() == []

        # the negative case: the Machine deleted anyway (as CAPI's own remediation would) stays
        # deleting while the budget holds the drain
        c.kubectl("delete", "machine", target, "-n", "homelab", "--wait=false")
        sim.wait("the eviction refused", lambda: [e for e in sim.events("eviction-refused") if e["machine"] == target])
        assert sim.machine(target) is not None and not [e for e in sim.events("node-deleted") if e["machine"] == target]
        # the budget allows one: the drain goes on, the Node goes with the Machine
        c.kubectl("patch", "pdb", "db", "-n", "homelab", "--type=merge", "-p", '{"spec":{"minAvailable":0}}')
        sim.wait("the machine gone", lambda: sim.machine(target) is None)
        assert [e["pod"] for e in sim.events("pod-evicted") if e["machine"] == target] == ["homelab/" + pod]
        assert [e["node"] for e in sim.events("node-deleted") if e["machine"] == target] == ["worker-2"]
    finally:
        c.kubectl("delete", "deployment,pdb", "db", "-n", "homelab", "--ignore-not-found")
        for m in sim.machines():
            sim.mark_unhealthy(m["metadata"]["name"], healthy=True)
        sim.wait("the replacement made", lambda: sim.machine(target) is None, timeout=30)
        sim.adopt_replacements()


def test_a_control_plane_machine_whose_removal_would_break_etcds_quorum_is_refused(talos_capi, run_playbook, talos):
    """Three control plane Machines, each an etcd member (the fixture's cp-1 and two more, with
    kwok nodes of their own): with cp-2 and cp-3 unhealthy, removing cp-2 would leave two
    members, one of them healthy, below their quorum of two (KubeadmControlPlane's
    canSafelyRemoveEtcdMember; the Talos provider has no such rule, so the collection keeps
    it). It is refused before any write, even where max_concurrent_unavailable allows two.
    With cp-3 healthy again the same remediation is planned (the negative case)."""
    sim, c = talos_capi, talos_capi.cluster
    tcp = c.get_json("taloscontrolplanes", "homelab-cp", "-n", "homelab")
    cp1 = on_node(sim, "cp-1")
    added = {"cp-2": "homelab-cp-m2q8r", "cp-3": "homelab-cp-z4t6w"}
    try:
        for i, (node, machine) in enumerate(sorted(added.items()), start=12):
            c.register_node(node, "talos-capi")
            c.kubectl("label", "node", node, "node-role.kubernetes.io/control-plane=")
            c.manage_node(node)
            c.kubectl("create", "-f", "-", input=json.dumps({
                "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                "metadata": {"name": machine, "namespace": "homelab",
                             "labels": {"cluster.x-k8s.io/cluster-name": "homelab",
                                        "cluster.x-k8s.io/control-plane": ""},
                             "annotations": {"sim.homelab.k8s-ha/node": node, "sim.homelab.k8s-ha/ip": "10.10.0.%d" % i}},
                "spec": {"clusterName": "homelab", "version": "v1.34.1",
                         "bootstrap": {"dataSecretName": machine + "-bootstrap-data"},
                         "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "MetalMachine",
                                               "name": machine}}}))
        c.kubectl("patch", "taloscontrolplane", "homelab-cp", "-n", "homelab", "--type=merge",
                  "-p", '{"spec":{"replicas":3}}')
        sim.wait("three control plane machines Running on Ready nodes", lambda: all(
            (sim.machine(m) or {}).get("status", {}).get("phase") == "Running" and c.node_ready(n)
            for n, m in added.items()))
        sim.mark_unhealthy(added["cp-2"])
        sim.mark_unhealthy(added["cp-3"])
        offset = audit_size(c)
        r = remediate(run_playbook, sim, talos, action="remediate", machine=added["cp-2"],
                      max_concurrent_unavailable=2)
        assert r["failed"] is True, r
        assert ("removing control plane machine %s would leave etcd 2 member(s), 1 of them healthy (%s), below its"
                " quorum of 2" % (added["cp-2"], cp1)) in r["msg"], r["msg"]
        assert "Bring back %s (HealthCheckSucceeded False (UnhealthyNode))" % added["cp-3"] in r["msg"], r["msg"]
        assert machine_deletes(c, offset) == [] and talos.calls() == []

        sim.mark_unhealthy(added["cp-3"], healthy=True)
        # talosctl reaches the two new hosts too (the probe before anything destructive)
        talos.configure(nodes=dict(IPS, **{"10.10.0.12": "cp-2", "10.10.0.13": "cp-3"}))
        r = remediate(run_playbook, sim, talos, check=True, action="remediate", machine=added["cp-2"])
        assert not r.get("failed"), r.get("msg")
        assert r["changed"] is True and r["machine"]["control_plane"] is True
        assert r["diff"]["after"]["Machine homelab/%s" % added["cp-2"]] == "deleted"
        assert machine_deletes(c, offset) == [] and talos.calls() == []
    finally:
        talos.configure()
        for node, machine in added.items():
            c.kubectl("delete", "machine", machine, "-n", "homelab", "--ignore-not-found", "--wait=true")
            c.forget_node(node)
        c.kubectl("patch", "taloscontrolplane", "homelab-cp", "-n", "homelab", "--type=merge",
                  "-p", json.dumps({"spec": {"replicas": tcp["spec"]["replicas"]}}))
