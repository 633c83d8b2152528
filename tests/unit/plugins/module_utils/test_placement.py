from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
    audit,
    pinning,
    pod_template_spec,
    render_report,
)


def node(name, unschedulable=False, taints=(), ready="True"):
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"unschedulable": unschedulable, "taints": list(taints)},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


def pod(ns, name, node_name=None, owner=None, phase="Running"):
    meta = {"namespace": ns, "name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"metadata": meta, "spec": {"nodeName": node_name} if node_name else {},
            "status": {"phase": phase}}


def deploy(name, spec, kind="Deployment", owner=None):
    meta = {"namespace": "apps", "name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return {"kind": kind, "metadata": meta, "spec": {"template": {"spec": spec}}}


UNSCHED = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def cluster():
    nodes = [node("worker-1", True, [UNSCHED]), node("miniserver")]
    pods = [
        pod("metallb-system", "speaker-w1", "worker-1", ("DaemonSet", "metallb-speaker")),
        pod("apps", "arr-1", "miniserver", ("ReplicaSet", "arr-5d")),
        pod("apps", "stray", "worker-1"),  # a bare pod on server-2
        pod("apps", "qdrant-1", None, ("ReplicaSet", "qdrant-7c"), phase="Pending"),
    ]
    workloads = [
        deploy("arr", {"nodeName": "miniserver"}),
        deploy("homarr", {"nodeSelector": {"kubernetes.io/hostname": "miniserver"}}),
        deploy("qdrant", {}),
        deploy("arr-5d", {"nodeName": "miniserver"}, kind="ReplicaSet", owner=("Deployment", "arr")),
        {"kind": "CronJob", "metadata": {"namespace": "apps", "name": "backup"},
         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
             "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}}}}}},
    ]
    return audit(nodes, pods, workloads)


def test_pods_on_server2_split_by_daemonset_ownership():
    facts = cluster()
    assert [p["name"] for p in facts["pods_by_node"]["worker-1"]] == ["stray", "speaker-w1"]  # by namespace
    assert [p["name"] for p in facts["non_daemonset_pods"]["worker-1"]] == ["stray"]
    assert facts["non_daemonset_pods"]["miniserver"][0]["owner_kind"] == "ReplicaSet"


def test_nodes_sorted_with_cordon_and_taints():
    facts = cluster()
    assert [n["name"] for n in facts["nodes"]] == ["miniserver", "worker-1"]
    w1 = facts["nodes"][1]
    assert w1["unschedulable"] and w1["ready"]
    assert w1["taints"] == [UNSCHED]


def test_workload_pinning_and_unguarded():
    facts = cluster()
    how = {(w["kind"], w["name"]): w["pinning"] for w in facts["workloads"]}
    assert how == {
        ("Deployment", "arr"): "nodeName",
        ("Deployment", "homarr"): "nodeSelector",
        ("Deployment", "qdrant"): "none",
        ("CronJob", "backup"): "affinity",
        ("Pod", "stray"): "nodeName",  # a bound bare pod cannot move
    }  # the ReplicaSet owned by arr is folded into its Deployment
    assert [w["name"] for w in facts["unguarded"]] == ["qdrant"]


def test_pending_pods_listed():
    assert cluster()["pending_pods"] == [("apps", "qdrant-1")]


def test_not_ready_node():
    facts = audit([node("w", ready="Unknown")], [], [])
    assert facts["nodes"][0]["ready"] is False
    assert facts["pods_by_node"] == {"w": []}


def test_snake_case_input_from_python_client():
    spec = {"node_selector": {"role": "primary"}}
    assert pinning(spec) == "nodeSelector"
    assert pod_template_spec({"kind": "Pod", "spec": spec}) == spec


def test_report_names_what_a_person_needs():
    text = "\n".join(render_report(cluster(), "worker-1"))
    assert "worker-1       Ready,SchedulingDisabled" in text
    assert "taints: node.kubernetes.io/unschedulable:NoSchedule" in text
    assert "Pods on worker-1: 2 (1 not from a DaemonSet)" in text
    assert "Deployment   apps/qdrant: none" in text
    assert "Deployment   apps/arr: nodeName=miniserver" in text
    assert "Unguarded (no nodeName, nodeSelector or required affinity): apps/qdrant" in text


def test_failed_scheduling_since_uses_the_latest_event_time():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
        failed_scheduling_since,
    )

    def event(reason, pod, **times):
        return dict({"reason": reason, "message": "0/2 nodes are available",
                     "involvedObject": {"namespace": "apps", "name": pod},
                     "metadata": {"creationTimestamp": "2026-11-21T17:00:00Z"}}, **times)

    events = [
        event("FailedScheduling", "old", lastTimestamp="2026-11-21T17:59:59Z"),
        event("FailedScheduling", "new", eventTime="2026-11-21T18:00:01.123456Z"),
        event("FailedScheduling", "repeating", eventTime="2026-11-21T17:00:00.000000Z",
              series={"lastObservedTime": "2026-11-21T18:00:30.000000Z"}),
        event("Scheduled", "fine", lastTimestamp="2026-11-21T18:00:02Z"),
    ]
    got = failed_scheduling_since(events, "2026-11-21T18:00:00.5+00:00")
    assert [e["pod"] for e in got] == ["new", "repeating"]
    assert got[0]["time"] == "2026-11-21T18:00:01.123456Z"
