import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils import capi as C


def tcp(surge=0):
    ru = {} if surge is None else {"rollingUpdate": {"maxSurge": surge}}
    return {"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha3", "kind": "TalosControlPlane",
            "metadata": {"name": "homelab-cp"}, "spec": {"replicas": 3, "rolloutStrategy": dict(type="RollingUpdate", **ru)}}


def md(version="v1beta2", surge=0, unavailable=1, name="homelab-workers"):
    ru = {"maxSurge": surge, "maxUnavailable": unavailable}
    spec = {"strategy": {"rollingUpdate": ru}} if version == "v1beta1" else \
        {"rollout": {"strategy": {"type": "RollingUpdate", "rollingUpdate": ru}}}
    return {"apiVersion": "cluster.x-k8s.io/" + version, "kind": "MachineDeployment",
            "metadata": {"name": name}, "spec": spec}


def machine(name, node=None, cp=False, phase="Running", healthy=True, version="v1beta2", ip=None, deleting=False):
    labels = {C.CLUSTER_LABEL: "homelab"}
    labels[C.CP_LABEL if cp else C.MD_LABEL] = "" if cp else "homelab-workers"
    cond = {"type": "NodeHealthy", "status": "True" if healthy else "False", "reason": "" if healthy else "NodeNotReady"}
    status = {"phase": phase, "conditions": [cond]} if version == "v1beta2" else \
        {"phase": phase, "conditions": [], "v1beta2": {"conditions": [cond]}}
    if node:
        status["nodeRef"] = {"name": node}
    if ip:
        status["addresses"] = [{"type": "Hostname", "address": node}, {"type": "InternalIP", "address": ip}]
    meta = {"name": name, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-22T08:00:00Z"
    return {"apiVersion": "cluster.x-k8s.io/" + version, "kind": "Machine", "metadata": meta, "status": status}


def node(name, ready="True", ip="127.0.0.1"):
    return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}],
                                                   "addresses": [{"type": "InternalIP", "address": ip}]}}


def nodes(*items):
    return {n["metadata"]["name"]: n for n in items}


def test_guards_accept_the_runbooks_settings_in_both_versions():
    assert C.guard_errors(tcp(0), [md("v1beta1"), md("v1beta2")]) == []
    assert C.guard_errors(tcp("0"), [md(surge="0%", unavailable="1")]) == []


def test_guards_name_the_field_path_of_each_version():
    errs = C.guard_errors(tcp(1), [md("v1beta1", surge=1), md("v1beta2", unavailable=2, name="gpu")])
    assert errs == [
        "TalosControlPlane homelab-cp: spec.rolloutStrategy.rollingUpdate.maxSurge is 1; the no-spare rollout"
        " needs 0 (a surge machine has nowhere to go)",
        "MachineDeployment homelab-workers (v1beta1): spec.strategy.rollingUpdate.maxSurge is 1; needs 0",
        "MachineDeployment gpu (v1beta2): spec.rollout.strategy.rollingUpdate.maxUnavailable is 2; needs 1"]
    assert "not set (defaults to 1)" in C.guard_errors(tcp(None), [])[0]
    assert C.guard_errors(None, [md(unavailable="100%")])[0].endswith("is 100%; needs 1")


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_unhealthy_from_conditions_of_either_version_or_the_node(version):
    ns = nodes(node("cp-1"), node("worker-1", ready="False"))
    assert C.unhealthy_reasons(machine("a", "cp-1", cp=True, version=version), ns) == []
    assert C.unhealthy_reasons(machine("b", "cp-1", healthy=False, version=version), ns) == \
        ["NodeHealthy False (NodeNotReady)"]
    assert C.unhealthy_reasons(machine("c", "worker-1", version=version), ns) == ["node worker-1 Ready=False"]
    assert C.unhealthy_reasons(machine("d", "gone", version=version), ns) == ["node gone is gone"]
    assert C.unhealthy_reasons(machine("e", "cp-1", phase="Failed", version=version), ns) == ["phase Failed"]


def test_control_plane_first_one_at_a_time():
    ns = nodes(node("cp-1", "False"), node("cp-2"), node("cp-3"), node("worker-1", "False"))
    ms = [machine("w-1", "worker-1"), machine("cp-a", "cp-1", cp=True), machine("cp-b", "cp-2", cp=True),
          machine("cp-c", "cp-3", cp=True)]
    m, why, errors = C.select(ms, ns)
    assert m["metadata"]["name"] == "cp-a" and why == ["node cp-1 Ready=False"] and errors == []
    m, why, errors = C.select(ms, ns, scope="workers")
    assert m["metadata"]["name"] == "w-1" and errors == []
    m, why, errors = C.select(ms, ns, wanted="w-1")
    assert m is None and "control plane machine cp-a is unhealthy too" in errors[0]


def test_max_concurrent_unavailable_counts_the_scope_with_the_target():
    ns = nodes(node("worker-1", "False"), node("worker-2"), node("cp-1"))
    ms = [machine("w-1", "worker-1"), machine("w-2", "worker-2"), machine("w-3", phase="Provisioning"),
          machine("cp-a", "cp-1", cp=True)]
    m, _why, errors = C.select(ms, ns)
    assert m["metadata"]["name"] == "w-1"
    assert errors == ["2 worker machines are unavailable or deleting (w-1: node worker-1 Ready=False; w-3: phase"
                      " Provisioning); max_concurrent_unavailable is 1, so remediating w-1 now could take one"
                      " more down. Wait until the others are back"]
    assert C.select(ms, ns, max_unavailable=2)[2] == []
    ms[2] = machine("w-3", "worker-2", deleting=True)
    assert "w-3: deleting" in C.select(ms, ns)[2][0]


def test_nothing_to_do_and_bad_machine_names():
    ns = nodes(node("worker-1"))
    ms = [machine("w-1", "worker-1")]
    assert C.select(ms, ns) == (None, [], [])
    assert C.select(ms, ns, wanted="w-1")[2] == ["machine: w-1 is healthy; nothing to remediate"]
    assert C.select(ms, ns, wanted="w-9")[2] == ["machine: 'w-9' is not a Machine of this cluster; machines: w-1"]


def test_resolve_prefers_the_machines_internal_ip():
    ns = nodes(node("worker-1", ip="127.0.0.1"))
    assert C.resolve(machine("w-1", "worker-1", ip="10.10.0.21"), ns) == ("worker-1", "10.10.0.21", None)
    assert C.resolve(machine("w-1", "worker-1"), ns) == ("worker-1", "127.0.0.1", None)
    assert C.resolve(machine("w-1"), ns)[2] == "machine w-1 has no status.nodeRef: its node cannot be found"


def test_talosctl_command_is_the_runbooks():
    assert C.talosctl_argv("talosctl", "10.10.0.21", "powercycle", "30m") == [
        "talosctl", "-n", "10.10.0.21", "reboot", "--mode=powercycle", "--wait=true", "--timeout", "30m"]
    with pytest.raises(ValueError, match="reboot_mode: 'hard'; use one of default, powercycle, force"):
        C.talosctl_argv("talosctl", "10.10.0.21", "hard", "30m")


def test_the_probe_before_anything_destructive_only_reads_the_node_the_reboot_would_reach():
    argv = C.talosctl_argv("/usr/local/bin/talosctl", "10.10.0.21", "default", "30m", "/etc/talos/config")
    assert C.talosctl_probe_argv(argv) == [
        "/usr/local/bin/talosctl", "--talosconfig", "/etc/talos/config", "-n", "10.10.0.21", "version"]


def test_sync_waves():
    def doc(kind, wave):
        ann = {} if wave is None else {C.SYNC_WAVE: wave}
        return {"kind": kind, "metadata": {"name": kind.lower(), "annotations": ann}}
    good = [doc("TalosConfigTemplate", "-2"), doc("MachineDeployment", "-1"), doc("TalosControlPlane", "0"),
            doc("ConfigMap", None)]
    errors, seen = C.sync_wave_errors(good)
    assert errors == [] and sorted(seen) == ["MachineDeployment", "TalosConfigTemplate", "TalosControlPlane"]
    errors, _seen = C.sync_wave_errors([doc("TalosControlPlane", "-1"), doc("MachineDeployment", None)])
    assert errors == ['TalosControlPlane taloscontrolplane: annotation argocd.argoproj.io/sync-wave is "-1"; needs "0"',
                      'MachineDeployment machinedeployment: annotation argocd.argoproj.io/sync-wave is missing;'
                      ' needs "-1"']


def test_waiting_lists_the_others_control_plane_first():
    ns = nodes(node("cp-1", "False"), node("worker-1", "False"), node("worker-2", "False"))
    ms = [machine("w-2", "worker-2"), machine("w-1", "worker-1"), machine("cp-a", "cp-1", cp=True)]
    assert C.waiting(ms, ns, "all", "cp-a") == ["w-1", "w-2"]
    assert C.waiting(ms, ns, "workers", "w-1") == ["w-2"]


def test_rollout_plan_items_and_report():
    target = {"machine": {"name": "w-1", "uid": "u1", "control_plane": False, "reasons": ["phase Failed"]},
              "node": "worker-1", "ip": "10.10.0.21",
              "talosctl": ["talosctl", "-n", "10.10.0.21", "reboot", "--mode=default", "--wait=true", "--timeout", "30m"]}
    items, report = C.rollout_plan("default/homelab", target, ["w-2"], True, "lvm-thick",
                                   {"remaining": [{"resource": "pvc-b"}, {"resource": "pvc-a"}]})
    assert [i["step"] for i in items] == ["linstor-evacuate", "delete-machine", "reboot", "linstor-restore-settle"]
    assert items[0]["resources"] == ["pvc-a", "pvc-b"]
    assert report[1].startswith("  1. LINSTOR: assert no faulty resource; node evacuate worker-1")
    assert report[-1] == "  next, in a new run (one machine at a time): w-2"
    items, report = C.rollout_plan("default/homelab", target, [], False, "lvm-thick", None)
    assert [i["step"] for i in items] == ["delete-machine", "reboot"]
    assert C.rollout_plan("default/homelab", {"machine": None}, [], True, "lvm-thick") == (
        [], ["Cluster default/homelab: no machine needs remediation; nothing to do"])


def test_step_errors_name_what_a_step_after_the_delete_needs():
    given = {"machine": "w1-old", "node": "worker-1", "ip": "10.0.0.1", "control_plane": False}
    assert all(C.step_errors("remediate", s, given) == [] for s in C.STEPS)
    assert C.step_errors("select", "all", {}) == []
    assert C.step_errors("remediate", "delete", {}) == []  # the delete step selects, as all does
    assert C.step_errors("select", "reboot", given) == ["step: reboot is a step of action=remediate, not of action=select"]
    assert C.step_errors("remediate", "reboot", dict(given, ip="")) == [
        "step reboot needs ip (from the delete step's result: ip)"]
    assert C.step_errors("remediate", "rollout", {"node": "worker-1"}) == [
        "step rollout needs machine, control_plane (from the delete step's result: machine.name, machine.control_plane)"]
    assert C.step_errors("remediate", "node_ready", {"control_plane": False}) == [
        "step node_ready needs node (from the delete step's result: node)"]
    assert "use one of all, delete, reboot, node_ready, rollout" in C.step_errors("remediate", "nap", given)[0]


def test_rollout_state_waits_for_the_peers_of_the_deleted_machines_kind_and_finds_its_replacement():
    ns = nodes(node("cp-1"), node("worker-1", ready="False"), node("worker-2"))
    ms = [machine("cp-a", "cp-1", cp=True), machine("w-new", "worker-1", phase="Provisioned"),
          machine("w-2", "worker-2")]
    down, new = C.rollout_state(ms, ns, False, "worker-1", "w-old")
    assert new == "w-new" and set(down) == {"w-new"}
    ns["worker-1"] = node("worker-1")
    ms[1] = machine("w-new", "worker-1")
    assert C.rollout_state(ms, ns, False, "worker-1", "w-old") == ({}, "w-new")
    # a control plane remediation does not wait for an unhealthy worker
    ms[2] = machine("w-2", "worker-2", healthy=False)
    assert C.rollout_state(ms, ns, True, "cp-1", "cp-old") == ({}, "cp-a")
    assert C.rollout_state([], ns, False, "worker-1", "w-old") == ({}, None)


def test_steps_result_tags_each_phase_and_keeps_what_the_role_reads():
    delete = {"changed": True, "events": [{"t": 0.1, "event": "Machine w-old delete sent"}]}
    reboot = {"changed": True, "events": [{"t": 1.5, "event": "talosctl reboot 10.0.0.1 done"}]}
    rollout = {"changed": False, "replacement": "w-new", "events": [{"t": 2.0, "event": "rollout: back"}]}
    r = C.steps_result([delete, reboot, {"skipped": True}, rollout], ["delete", "reboot", "node_ready", "rollout"])
    assert [p["phase"] for p in r["phases"]] == ["delete", "reboot", "rollout"]
    assert [(e["phase"], e["t"]) for e in r["events"]] == [("delete", 0.1), ("reboot", 1.5), ("rollout", 2.0)]
    assert r["replacement"] == "w-new" and r["stopped"] is False
    stopped = C.steps_result([delete, {"failed": True, "msg": "talosctl failed", "events": []}, {}, {}],
                             ["delete", "reboot", "node_ready", "rollout"])
    assert stopped["stopped"] is True and stopped["replacement"] is None
    assert [p["phase"] for p in stopped["phases"]] == ["delete", "reboot"]
    assert C.steps_result([]) == {"events": [], "phases": [], "stopped": False, "replacement": None}


# --- the Argo Workflows mutex (issue 20.6) ----------------------------------------------

def _wf(name, phase="Running", template="capi-rollout-orchestrator", holding=None, waiting=None, ns="argo"):
    wf = {"metadata": {"name": name, "namespace": ns}, "spec": {"workflowTemplateRef": {"name": template}},
          "status": {"phase": phase}}
    if holding is not None or waiting is not None:
        wf["status"]["synchronization"] = {"mutex": {
            "holding": [{"mutex": m, "holder": name} for m in holding or []],
            "waiting": [{"mutex": m, "holder": "other/node"} for m in waiting or []]}}
    return wf


MUTEX = "capi-rollout-default-homelab"


def test_a_running_workflow_holding_the_mutex_counts():
    found = C.remediation_workflows([_wf("r1", holding=["argo/Mutex/" + MUTEX])], "argo", "capi-rollout-orchestrator", MUTEX)
    assert found == [{"name": "argo/r1", "phase": "Running", "why": "holds the mutex " + MUTEX}]


def test_a_workflow_of_another_namespace_holding_our_mutex_counts():
    found = C.remediation_workflows([_wf("x", template="manual", holding=["argo/Mutex/" + MUTEX], ns="team")],
                                    "argo", "capi-rollout-orchestrator", MUTEX)
    assert [f["name"] for f in found] == ["team/x"]


def test_a_workflow_waiting_for_the_mutex_counts_whatever_its_template():
    found = C.remediation_workflows([_wf("w", phase="Pending", template="manual", waiting=["argo/Mutex/" + MUTEX])],
                                    "argo", "capi-rollout-orchestrator", MUTEX)
    assert [f["why"] for f in found] == ["waits for the mutex " + MUTEX]


def test_a_database_mutex_counts_too():
    found = C.remediation_workflows([_wf("d", holding=["argo/Database/" + MUTEX])], "argo", "capi-rollout-orchestrator", MUTEX)
    assert len(found) == 1


def test_a_workflow_of_the_template_not_started_yet_counts():
    wf = _wf("new", phase="")
    del wf["status"]["phase"]
    found = C.remediation_workflows([wf], "argo", "capi-rollout-orchestrator", MUTEX)
    assert found == [{"name": "argo/new", "phase": "(not started)",
                      "why": "runs WorkflowTemplate capi-rollout-orchestrator and has taken no mutex yet"}]


def test_finished_workflows_and_other_clusters_do_not_count():
    wfs = [_wf("done-%s" % p, phase=p, holding=["argo/Mutex/" + MUTEX]) for p in C.WORKFLOW_FINISHED]
    wfs.append(_wf("other-cluster", holding=["argo/Mutex/capi-rollout-default-lab2"]))
    wfs.append(_wf("unrelated", template="backup"))
    # a mutex of that name in another namespace is another mutex; a template is namespaced too
    wfs.append(_wf("elsewhere", template="manual", holding=["team/Mutex/" + MUTEX], ns="team"))
    wfs.append(_wf("same-name-elsewhere", ns="team"))
    assert C.remediation_workflows(wfs, "argo", "capi-rollout-orchestrator", MUTEX) == []


def test_a_cluster_scoped_template_of_the_same_name_is_another_template():
    wf = _wf("c")
    wf["spec"]["workflowTemplateRef"]["clusterScope"] = True
    assert C.remediation_workflows([wf], "argo", "capi-rollout-orchestrator", MUTEX) == []


def test_the_refusal_names_the_workflow_and_what_to_do():
    found = C.remediation_workflows([_wf("r1", holding=["argo/Mutex/" + MUTEX])], "argo", "capi-rollout-orchestrator", MUTEX)
    msg = C.workflow_guard_message(found, "capi-rollout-orchestrator", MUTEX)
    assert msg.startswith("runbook 004's own remediation is in flight: Workflow argo/r1 (Running) holds the mutex "
                          + MUTEX + ". ")
    assert "argo stop <name>" in msg


# ---- CAPI's own remediation (capi_remediation_errors) ---------------------------------------

CLUSTER = {"metadata": {"name": "homelab"}, "spec": {}}


def mhc(name="workers", selector=None, cluster="homelab", template=None, paused=False):
    spec = {"clusterName": cluster,
            "selector": selector if selector is not None else {"matchLabels": {C.MD_LABEL: "homelab-workers"}}}
    if template:
        spec["remediation"] = {"templateRef": {"kind": "Metal3RemediationTemplate", "name": template}}
    meta = {"name": name, "namespace": "homelab"}
    if paused:
        meta["annotations"] = {C.PAUSED: ""}
    return {"metadata": meta, "spec": spec}


def in_ns(m, annotations=None, conditions=()):
    m["metadata"]["namespace"] = "homelab"
    if annotations:
        m["metadata"]["annotations"] = annotations
    m["status"]["conditions"] = m["status"].get("conditions", []) + list(conditions)
    return m


def test_a_health_check_that_selects_the_worker_refuses_with_the_command_that_excludes_it():
    w = in_ns(machine("w1", "worker-1"))
    errs = C.capi_remediation_errors(w, [mhc()], CLUSTER, "TalosControlPlane")
    assert errs == [
        "machine w1 is watched by MachineHealthCheck homelab/workers: when its checks fail, its MachineSet"
        " replaces the Machine without the LINSTOR evacuation, racing this run. Take the machine out of"
        " CAPI's remediation for the run (the run deletes it; its replacement is watched again):"
        " kubectl -n homelab annotate machine w1 cluster.x-k8s.io/skip-remediation="]
    # an empty selector selects every Machine of its cluster; a template names who replaces it
    assert "remediation template m3" in C.capi_remediation_errors(
        w, [mhc(selector={}, template="m3")], CLUSTER, "TalosControlPlane")[0]
    # expressions as metav1.LabelSelector has them
    expr = {"matchExpressions": [{"key": C.MD_LABEL, "operator": "In", "values": ["homelab-workers"]}]}
    assert len(C.capi_remediation_errors(w, [mhc(selector=expr)], CLUSTER, "TalosControlPlane")) == 1
    expr["matchExpressions"][0]["operator"] = "NotIn"
    assert C.capi_remediation_errors(w, [mhc(selector=expr)], CLUSTER, "TalosControlPlane") == []


@pytest.mark.parametrize("case", ["skip", "machine-paused", "cluster-paused", "mhc-paused", "other-cluster",
                                  "other-selector"])
def test_no_refusal_where_capi_would_leave_the_machine_alone(case):
    ann = {"skip": {C.SKIP_REMEDIATION: ""}, "machine-paused": {C.PAUSED: ""}}.get(case)
    w = in_ns(machine("w1", "worker-1"), annotations=ann)
    cluster = {"metadata": {"name": "homelab"}, "spec": {"paused": case == "cluster-paused"}}
    check = mhc(paused=case == "mhc-paused", cluster="other" if case == "other-cluster" else "homelab",
                selector={"matchLabels": {C.MD_LABEL: "gpu"}} if case == "other-selector" else None)
    assert C.capi_remediation_errors(w, [check], cluster, "TalosControlPlane") == []


def test_a_talos_control_plane_remediates_nothing_but_a_kubeadm_one_does():
    cp = in_ns(machine("cp1", "cp-1", cp=True))
    everything = mhc(selector={})
    assert C.capi_remediation_errors(cp, [everything], CLUSTER, "TalosControlPlane") == []
    assert "its control plane (KubeadmControlPlane)" in C.capi_remediation_errors(
        cp, [everything], CLUSTER, "KubeadmControlPlane")[0]
    marked = in_ns(machine("cp1", "cp-1", cp=True), conditions=[
        {"type": "OwnerRemediated", "status": "False", "reason": "WaitingForRemediation"}])
    assert C.capi_remediation_errors(marked, [], CLUSTER, "TalosControlPlane") == []


def test_a_remediation_capi_has_started_refuses_even_when_the_machine_is_excluded_now():
    w = in_ns(machine("w1", "worker-1"), annotations={C.SKIP_REMEDIATION: ""}, conditions=[
        {"type": "OwnerRemediated", "status": "False", "reason": "RemediationDeferred"}])
    errs = C.capi_remediation_errors(w, [], CLUSTER, "TalosControlPlane")
    assert errs == ["machine w1: CAPI is remediating it itself (OwnerRemediated False, RemediationDeferred): its"
                    " owner deletes the Machine without the LINSTOR evacuation, and this run would race it. Let"
                    " CAPI's remediation finish (or pause the Cluster), then run again"]
    ext = in_ns(machine("w1", "worker-1"), conditions=[
        {"type": "ExternallyRemediated", "status": "False", "reason": "WaitingForRemediation"}])
    assert C.capi_remediation_errors(ext, [], CLUSTER, "TalosControlPlane")[0].startswith(
        "machine w1: an external remediation request is in flight")


# --- what a Node that CAPI deleted with its Machine lacks when it registers again ----------
LANE_TAINT = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


def _node(labels, taints=()):
    return {"metadata": {"name": "worker-1", "labels": dict(labels)}, "spec": {"taints": [dict(t) for t in taints]}}


def test_the_carry_is_what_a_new_registration_would_not_bring_back():
    node = _node({"kubernetes.io/hostname": "worker-1", "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": "a",
                  "node-role.kubernetes.io/worker": "", "team.node.cluster.x-k8s.io/x": "y",
                  "workload-lane": "secondary", "gpu": "true"},
                 [dict(LANE_TAINT, timeAdded="2026-12-04T00:00:00Z"),
                  {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                  {"key": "node.cluster.x-k8s.io/uninitialized", "effect": "NoSchedule"},
                  {"key": "gpu", "effect": "NoSchedule"}])
    assert C.node_carry(node) == {"labels": {"gpu": "true", "workload-lane": "secondary"},
                                  "taints": [LANE_TAINT, {"key": "gpu", "effect": "NoSchedule"}]}
    assert C.node_carry(None) == {"labels": {}, "taints": []}


def test_a_new_registration_lacks_the_carry_and_with_carry_puts_it_back_without_touching_the_rest():
    carry = {"labels": {"workload-lane": "secondary"}, "taints": [LANE_TAINT]}
    fresh = _node({"kubernetes.io/hostname": "worker-1"}, [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    assert C.carry_missing(fresh, carry) == carry
    assert C.carry_text(C.carry_missing(fresh, carry)) == \
        "labels workload-lane=secondary; taints workload-lane=secondary:NoSchedule"
    back = C.with_carry(fresh, carry)
    assert back["metadata"]["labels"] == {"kubernetes.io/hostname": "worker-1", "workload-lane": "secondary"}
    assert back["spec"]["taints"] == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}, LANE_TAINT]
    assert C.carry_missing(back, carry) == {"labels": {}, "taints": []}
    # a taint of the same key and effect with another value is replaced, as kubectl taint --overwrite does
    other = _node({}, [dict(LANE_TAINT, value="primary")])
    assert C.with_carry(other, carry)["spec"]["taints"] == [LANE_TAINT]
    assert C.carry_text({"labels": {}, "taints": []}) == "nothing"


def test_the_plan_says_what_the_node_gets_back():
    carry = {"labels": {"workload-lane": "secondary"}, "taints": [LANE_TAINT]}
    target = {"machine": {"name": "w-1", "uid": "u1", "control_plane": False, "reasons": ["phase Failed"]},
              "node": "worker-1", "ip": "10.10.0.21", "talosctl": ["talosctl", "reboot"], "carry": carry}
    items, report = C.rollout_plan("default/homelab", target, [], False, "lvm-thick", None)
    assert items[1] == {"step": "reboot", "node": "worker-1", "command": ["talosctl", "reboot"], "carry": carry}
    assert report[2] == ("  2. reboot: talosctl reboot; wait until worker-1 is Ready, and put back on it what a Node"
                         " CAPI deleted with its Machine lacks when it registers again: labels workload-lane=secondary;"
                         " taints workload-lane=secondary:NoSchedule")


def _machine(name, node, cp=False, **meta):
    labels = {C.CLUSTER_LABEL: "homelab"}
    if cp:
        labels[C.CP_LABEL] = ""
    return {"metadata": dict({"name": name, "namespace": "homelab", "labels": labels}, **meta),
            "status": {"nodeRef": {"name": node}}}


def _pod(name, labels, **meta):
    return {"metadata": dict({"name": name, "namespace": "apps", "labels": labels}, **meta), "status": {"phase": "Running"}}


def _pdb(allowed, selector=None):
    return {"metadata": {"name": "db", "namespace": "apps"},
            "spec": {"selector": selector if selector is not None else {"matchLabels": {"app": "db"}}},
            "status": {"disruptionsAllowed": allowed}}


def test_a_budget_that_allows_no_disruption_of_a_pod_on_the_node_refuses_before_the_drain_would_hang():
    worker, cp = _machine("w-1", "worker-1"), _machine("cp-1", "cp-1", cp=True)
    pods = [_pod("db-0", {"app": "db"})]
    errors = C.drain_errors(worker, [worker, cp], pods, [_pdb(0)])
    assert errors == ["CAPI drains node worker-1 before it deletes Machine w-1, and PodDisruptionBudget apps/db"
                      " allows no disruption of pod apps/db-0 now (disruptionsAllowed 0): the drain would wait with"
                      " the node already evacuated. Let the budget allow one (another replica Ready elsewhere, or a"
                      " lower minAvailable), then run again"]
    assert C.drain_errors(worker, [worker, cp], pods, [_pdb(1)]) == []
    # an empty selector selects every pod of its namespace (policy/v1); another namespace's budget none
    assert C.drain_errors(worker, [worker, cp], pods, [_pdb(0, selector={})])
    assert C.drain_errors(worker, [worker, cp], pods, [dict(_pdb(0), metadata={"name": "db", "namespace": "x"})]) == []


@pytest.mark.parametrize("case", ["daemonset", "mirror", "terminating", "finished", "excluded", "last-control-plane"])
def test_what_capis_drain_does_not_evict_does_not_refuse(case):
    worker, cp = _machine("w-1", "worker-1"), _machine("cp-1", "cp-1", cp=True)
    machines, target = [worker, cp], worker
    pod = _pod("db-0", {"app": "db"})
    if case == "daemonset":
        pod["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "agent"}]
    elif case == "mirror":
        pod["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    elif case == "terminating":
        pod["metadata"]["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    elif case == "finished":
        pod["status"]["phase"] = "Succeeded"
    elif case == "excluded":
        worker["metadata"]["annotations"] = {C.EXCLUDE_NODE_DRAINING: ""}
    else:  # isDeleteNodeAllowed: no other control plane Machine, so no drain and no Node deletion
        target, machines = cp, [worker, cp]
        pod["spec"] = {"nodeName": "cp-1"}
    assert C.drain_errors(target, machines, [pod], [_pdb(0)]) == []


def test_a_control_plane_machine_whose_removal_breaks_etcd_quorum_is_refused_whatever_the_unavailable_limit():
    ns = nodes(node("cp-1", "False"), node("cp-2", "False"), node("cp-3"))
    ms = [machine("cp-a", "cp-1", cp=True), machine("cp-b", "cp-2", cp=True), machine("cp-c", "cp-3", cp=True)]
    # three members, two down: removing cp-a leaves two, one healthy, below a quorum of two
    m, _why, errors = C.select(ms, ns, max_unavailable=3)
    assert m["metadata"]["name"] == "cp-a"
    assert errors == ["removing control plane machine cp-a would leave etcd 2 member(s), 1 of them healthy (cp-c),"
                      " below its quorum of 2 (KubeadmControlPlane's canSafelyRemoveEtcdMember): etcd would stop."
                      " Bring back cp-b (node cp-2 Ready=False) first"]
    # one down of three: two healthy members left, quorum kept
    ns["cp-2"] = node("cp-2")
    assert C.select(ms, ns, max_unavailable=3)[2] == []


@pytest.mark.parametrize("members, down, refused", [
    (1, 1, False),  # one member: it comes back on the same host (no-spare remediation)
    (2, 1, False),  # one left, healthy: quorum 1
    (2, 2, True),   # one left, unhealthy
    (4, 2, False),  # three left, two healthy: quorum 2
    (5, 3, True),   # four left, two healthy: quorum 3
])
def test_etcd_quorum_after_the_removal(members, down, refused):
    ms = [machine("cp-%d" % i, "n-%d" % i, cp=True) for i in range(members)]
    ns = nodes(*[node("n-%d" % i, "False" if i < down else "True") for i in range(members)])
    assert bool(C.etcd_quorum_errors(ms[0], ms, ns)) is refused
