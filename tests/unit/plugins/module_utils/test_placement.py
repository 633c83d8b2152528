import json

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
    audit,
    daemonset_coverage,
    longhorn_toleration_changes,
    pinning,
    pod_template_spec,
    render_coverage,
    render_report,
    toleration_changes,
    unkept,
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
    # judged by effect against worker-1 (the cordoned node): qdrant pins nothing, and stray is
    # bound to worker-1 itself, so its nodeName keeps it off nothing there
    assert [w["name"] for w in facts["unguarded"]] == ["qdrant", "stray"]
    assert facts["guard"] == ["worker-1"]


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
    assert "Unguarded (nothing in their own spec keeps them off worker-1): apps/qdrant, apps/stray" in text


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
    # the scheduler refreshes a series after its pod is gone: only pods that exist count
    for e, uid in zip(events, ("u-old", "u-new", "u-repeating", "u-fine")):
        e["involvedObject"]["uid"] = uid
    pods = [{"metadata": {"namespace": "apps", "name": "new", "uid": "u-new"}}]
    assert [e["pod"] for e in failed_scheduling_since(events, "2026-11-21T18:00:00.5+00:00", pods)] == ["new"]
    # a pod of the same name made anew (another uid) is another pod
    pods = [{"metadata": {"namespace": "apps", "name": "repeating", "uid": "u-other"}}]
    assert failed_scheduling_since(events, "2026-11-21T18:00:00.5+00:00", pods) == []


def test_failed_scheduling_since_counts_when_the_attempt_was_observed_not_when_written():
    """CI (stop 34): a pod's FailedScheduling written seconds after the attempt, the pod
    bound in between, read as a failure after the change completed."""
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
        at_or_after,
        failed_scheduling_since,
    )

    late_write = {"reason": "FailedScheduling", "message": "0/2 nodes are available",
                  "involvedObject": {"namespace": "apps", "name": "web-1"},
                  "eventTime": "2026-12-05T02:25:19.100000Z",
                  "metadata": {"creationTimestamp": "2026-12-05T02:25:22Z"}}
    assert failed_scheduling_since([late_write], "2026-12-05T02:25:21.400000Z") == []
    # an event that carries no other time is taken at its creation
    bare = {"reason": "FailedScheduling", "involvedObject": {"namespace": "apps", "name": "web-2"},
            "metadata": {"creationTimestamp": "2026-12-05T02:25:22Z"}}
    assert [e["pod"] for e in failed_scheduling_since([late_write, bare], "2026-12-05T02:25:21.400000Z")] == ["web-2"]
    # within one second the fractions decide; a whole-second time on either side counts
    assert not at_or_after("2026-12-05T02:25:21.100000Z", "2026-12-05T02:25:21.400000Z")
    assert at_or_after("2026-12-05T02:25:21.400000Z", "2026-12-05T02:25:21.4Z")
    assert at_or_after("2026-12-05T02:25:21.5Z", "2026-12-05T02:25:21.400000+00:00")
    assert at_or_after("2026-12-05T02:25:21Z", "2026-12-05T02:25:21.400000Z")
    assert at_or_after("2026-12-05T02:25:21.100000Z", "2026-12-05T02:25:21Z")
    assert not at_or_after("2026-12-05T02:25:20.999999Z", "2026-12-05T02:25:21Z")
    assert at_or_after("2026-12-05T02:25:22Z", "2026-12-05T02:25:21.999999Z")


@pytest.mark.parametrize("given, expected", [
    ("2026-11-21T18:00:00Z", "2026-11-21T18:00:00Z"),
    ("2026-11-21T18:00:00.250000Z", "2026-11-21T18:00:00.250000Z"),
    ("2026-11-21T18:00:00+00:00", "2026-11-21T18:00:00Z"),
    ("2026-11-21T18:00:00.25+00:00", "2026-11-21T18:00:00.25Z"),
    ("2026-11-21T18:00:00-00:00", "2026-11-21T18:00:00Z"),
    # RFC 3339 allows lower case; compared as a string, a lower-case t sorts after every event
    ("2026-11-21t18:00:00z", "2026-11-21T18:00:00Z"),
])
def test_events_since_takes_rfc_3339_in_utc(given, expected):
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import at_or_after, utc_time
    assert utc_time(given) == (expected, None)
    assert at_or_after("2026-11-21T18:00:01Z", utc_time(given)[0])
    assert not at_or_after("2026-11-21T17:59:59Z", utc_time(given)[0])


@pytest.mark.parametrize("given", [
    "yesterday", "", "2026-11-21", "2026-11-21T18:00:00", "2026-11-21 18:00:00Z", "2026-11-21T18:00Z",
    "2026-11-21T18:00:00+01:00", "2026-11-21T18:00:00.Z", "2026-02-30T18:00:00Z", "2026-11-21T24:00:00Z",
    "2026-11-21T18:00:60Z", " 2026-11-21T18:00:00Z", "2026-11-21T18:00:00Z ", "1700000000", None, 1700000000,
])
def test_events_since_refuses_anything_else_naming_the_option(given):
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import utc_time
    when, error = utc_time(given)
    assert when is None
    assert error.startswith("events_since: %s is not an RFC 3339 time in UTC; allowed: " % json.dumps(given))
    assert "2026-11-21T18:00:00Z" in error and "+00:00" in error and "\n" not in error


LANE = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


def daemonset(name, spec=None, labels=None, owner=None, desired=2, ns="metallb-system"):
    ds = deploy(name, dict(spec or {}), kind="DaemonSet", owner=owner)
    ds["metadata"].update(namespace=ns, labels=dict(labels or {}))
    ds["status"] = {"desiredNumberScheduled": desired}
    return ds


def test_the_lane_taint_drops_a_daemonset_that_does_not_tolerate_it_even_on_a_cordoned_node():
    nodes = [node("miniserver"), node("worker-1", True, [UNSCHED])]
    plain = daemonset("metallb-speaker")
    tolerant = daemonset("fluent-bit", {"tolerations": [{"operator": "Exists"}]})
    pinned = daemonset("gpu-agent", {"nodeSelector": {"kubernetes.io/hostname": "miniserver"}})
    rows = daemonset_coverage([plain, tolerant, pinned], nodes, {"worker-1": [LANE]})
    by = dict((r["name"], r) for r in rows)
    # the cordon does not keep a DaemonSet off (the controller tolerates it); the lane taint does
    assert by["metallb-speaker"]["covers_without"] == ["miniserver", "worker-1"]
    assert by["metallb-speaker"]["covers_with"] == ["miniserver"]
    assert by["metallb-speaker"]["dropped"] == ["worker-1"]
    assert by["metallb-speaker"]["why"] == {"worker-1": ["untolerated taint workload-lane=secondary:NoSchedule"]}
    assert by["metallb-speaker"]["needed"] == [
        {"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}]
    assert by["metallb-speaker"]["desired"] == 2 and by["metallb-speaker"]["manager"] is None
    # tolerates every taint, or never ran there: nothing dropped, nothing needed
    for name in ("fluent-bit", "gpu-agent"):
        assert by[name]["dropped"] == [] and by[name]["needed"] == []
    assert by["gpu-agent"]["covers_without"] == by["gpu-agent"]["covers_with"] == ["miniserver"]


def test_after_the_apply_the_taint_on_the_node_is_judged_the_same_way():
    nodes = [node("miniserver"), node("worker-1", False, [LANE])]
    rows = daemonset_coverage([daemonset("metallb-speaker")], nodes, {"worker-1": [LANE]})
    assert rows[0]["covers_without"] == ["miniserver", "worker-1"] and rows[0]["dropped"] == ["worker-1"]
    # the toleration the plan adds keeps it
    fixed = daemonset("metallb-speaker", {"tolerations": rows[0]["needed"]})
    assert daemonset_coverage([fixed], nodes, {"worker-1": [LANE]})[0]["dropped"] == []
    # a toleration for another value of the key does not
    other = daemonset("metallb-speaker", {"tolerations": [dict(rows[0]["needed"][0], value="primary")]})
    assert daemonset_coverage([other], nodes, {"worker-1": [LANE]})[0]["dropped"] == ["worker-1"]


def test_a_daemonset_an_operator_owns_names_its_manager_and_prefer_no_schedule_drops_nothing():
    nodes = [node("miniserver"), node("worker-1")]
    owned = daemonset("engine-image-ei-1", owner=("EngineImage", "ei-1"), ns="longhorn-system")
    managed = daemonset("longhorn-csi-plugin", labels={"longhorn.io/managed-by": "longhorn-manager"},
                        ns="longhorn-system")
    rows = daemonset_coverage([owned, managed], nodes, {"worker-1": [LANE]})
    assert [(r["name"], r["manager"], r["dropped"]) for r in rows] == [
        ("engine-image-ei-1", "EngineImage/ei-1", ["worker-1"]),
        ("longhorn-csi-plugin", "longhorn-manager", ["worker-1"])]
    soft = dict(LANE, effect="PreferNoSchedule")
    assert [r["dropped"] for r in daemonset_coverage([owned], nodes, {"worker-1": [soft]})] == [[]]


def test_coverage_report_and_unknown_nodes():
    nodes = [node("miniserver"), node("worker-1")]
    rows = daemonset_coverage([daemonset("metallb-speaker"), daemonset("fluent-bit", {"tolerations": [
        {"operator": "Exists"}]})], nodes, {"worker-1": [LANE]})
    assert render_coverage(rows, {"worker-1": [LANE]}) == [
        "DaemonSets with workload-lane=secondary:NoSchedule on worker-1: 1 of 2 keep every node they run on",
        "  metallb-system/metallb-speaker: runs on miniserver, worker-1; with the taints only on miniserver"
        " (loses worker-1: untolerated taint workload-lane=secondary:NoSchedule)"]
    try:
        daemonset_coverage([], nodes, {"worker-9": [LANE]})
    except ValueError as e:
        assert str(e) == "taints: no node named worker-9; nodes are: miniserver, worker-1"
    else:
        raise AssertionError("an unknown node was accepted")


def test_the_plan_keeps_the_node_agents_it_may_change_and_names_the_rest():
    nodes = [node("miniserver"), node("worker-1")]
    rows = daemonset_coverage([
        daemonset("metallb-speaker", {"tolerations": [{"key": "a", "operator": "Exists"}]}),
        daemonset("fluent-bit", ns="logging"),
        daemonset("engine-image-ei-1", owner=("EngineImage", "ei-1"), ns="longhorn-system"),
        daemonset("pinned", {"nodeSelector": {"kubernetes.io/hostname": "miniserver"}}),
    ], nodes, {"worker-1": [LANE]})
    tol = {"key": "workload-lane", "operator": "Equal", "value": "secondary", "effect": "NoSchedule"}
    assert toleration_changes(rows, ["metallb-system/*"]) == [{
        "kind": "DaemonSet", "api_version": "apps/v1", "namespace": "metallb-system", "name": "metallb-speaker",
        "compare": "exact", "fields": {"spec.template.spec.tolerations": [{"key": "a", "operator": "Exists"}, tol]}}]
    assert unkept(rows, ["metallb-system/*"]) == [
        "logging/fluent-bit (loses worker-1: not in the node agents the plan may change)",
        "longhorn-system/engine-image-ei-1 (loses worker-1: managed by EngineImage/ei-1, which undoes a live"
        " edit: give it the toleration there)"]
    assert [c["name"] for c in toleration_changes(rows, ["*/*"])] == ["fluent-bit", "metallb-speaker"]
    assert unkept(rows, ["*/*"]) == [
        "longhorn-system/engine-image-ei-1 (loses worker-1: managed by EngineImage/ei-1, which undoes a live"
        " edit: give it the toleration there)"]
    for bad in ("*/*", ["metallb-speaker"], [3]):
        try:
            toleration_changes(rows, bad)
        except ValueError as e:
            assert "node_agents must be a list of namespace/name patterns" in str(e)
        else:
            raise AssertionError("%r was accepted" % (bad,))


def test_longhorn_keeps_its_own_daemonsets_through_its_setting():
    """longhorn-manager's own DaemonSets (its label, even when an EngineImage owns one) are
    kept by taint-toleration, not a live edit; only when Longhorn's Setting is there."""
    nodes = [node("miniserver"), node("worker-1")]
    engine = daemonset("engine-image-ei-1", owner=("EngineImage", "ei-1"), ns="longhorn-system",
                       labels={"longhorn.io/managed-by": "longhorn-manager"})
    csi = daemonset("longhorn-csi-plugin", labels={"longhorn.io/managed-by": "longhorn-manager"}, ns="longhorn-system")
    rows = daemonset_coverage([engine, csi, daemonset("metallb-speaker")], nodes, {"worker-1": [LANE]})
    assert [r["manager"] for r in rows] == ["longhorn-manager", "longhorn-manager", None]
    setting = {"metadata": {"name": "taint-toleration"}, "value": "gpu:NoSchedule"}
    assert longhorn_toleration_changes(rows, [setting], [LANE]) == {
        "taint-toleration": "gpu:NoSchedule;workload-lane=secondary:NoSchedule"}
    # no Setting (Longhorn's API not served, or not readable): nothing planned, both unkept
    assert longhorn_toleration_changes(rows, [], [LANE]) == {}
    assert [u.split(" ")[0] for u in unkept(rows, ["*/*"])] == [
        "longhorn-system/engine-image-ei-1", "longhorn-system/longhorn-csi-plugin"]
    # planned: kept, and the live edit is only for the DaemonSet no one manages
    assert unkept(rows, ["*/*"], longhorn_kept=True) == []
    assert [c["name"] for c in toleration_changes(rows, ["*/*"])] == ["metallb-speaker"]
    # tolerated already: no change
    done = dict(setting, value="workload-lane=secondary:NoSchedule")
    assert longhorn_toleration_changes(rows, [done], [LANE]) == {}


def test_guarded_is_judged_by_effect_not_by_the_field():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import guard_verdict

    def labelled(n, lane):
        return dict(n, metadata={"name": n["metadata"]["name"], "labels": {"kubernetes.io/os": "linux", "lane": lane}})
    nodes = [labelled(node("miniserver"), "primary"), labelled(node("worker-1", True, [UNSCHED]), "secondary")]
    pinned_everywhere = {"nodeSelector": {"kubernetes.io/os": "linux"}}
    assert pinning(pinned_everywhere) == "nodeSelector"
    assert guard_verdict(pinned_everywhere, nodes, ["worker-1"]) == {"guarded": False, "kept_off": {}}
    primary = {"nodeSelector": {"lane": "primary"}}
    assert guard_verdict(primary, nodes, ["worker-1"]) == {
        "guarded": True, "kept_off": {"worker-1": ["nodeSelector lane=primary does not match"]}}
    # the cordon and taints of worker-1 are its own guard, not the workload's
    assert not guard_verdict({}, nodes, ["worker-1"])["guarded"]
    # nodeName: guarded against every node but its own
    assert guard_verdict({"nodeName": "worker-1"}, nodes, ["worker-1"])["guarded"] is False
    assert guard_verdict({"nodeName": "miniserver"}, nodes, ["worker-1"])["guarded"] is True
    # no node to judge against: guarded when kept off some node
    assert guard_verdict(primary, nodes)["guarded"] and not guard_verdict(pinned_everywhere, nodes)["guarded"]


def test_replication_controllers_and_pods_of_other_owners_are_audited():
    nodes = [node("worker-1", True, [UNSCHED]), node("miniserver")]
    rc = {"kind": "ReplicationController", "metadata": {"namespace": "apps", "name": "legacy"},
          "spec": {"template": {"spec": {}}}}
    pods = [pod("apps", "legacy-x", "miniserver", ("ReplicationController", "legacy")),
            pod("apps", "vm-1", None, ("VirtualMachineInstance", "vm"), phase="Pending"),
            pod("kube-system", "etcd-miniserver", "miniserver", ("Node", "miniserver"))]
    facts = audit(nodes, pods, [rc])
    assert [(w["kind"], w["name"], w.get("owner_kind")) for w in facts["workloads"]] == [
        ("Pod", "vm-1", "VirtualMachineInstance"), ("ReplicationController", "legacy", None),
        ("Pod", "etcd-miniserver", "Node")]  # by namespace, kind, name
    assert [w["name"] for w in facts["unguarded"]] == ["vm-1", "legacy"]
