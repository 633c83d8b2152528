import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import (
    Watch,
    batches,
    merge_results,
    node_eligibility,
    plan,
    plan_lines,
    plan_tracker,
    rebuilds_in_flight,
    select,
    step_label,
    survivors,
    validate,
    views,
)


def volume(name, replicas=1, state="attached", robustness="healthy", pvc=None, node=None):
    status = {"state": state, "robustness": robustness}
    if node:
        status["currentNodeID"] = node
    if pvc:
        ns, claim = pvc.split("/")
        status["kubernetesStatus"] = {"namespace": ns, "pvcName": claim}
    return {"metadata": {"name": name}, "spec": {"numberOfReplicas": replicas}, "status": status}


def replica(name, vol, node, failed=False, retries=0):
    return {"metadata": {"name": name},
            "spec": {"volumeName": vol, "nodeID": node, "failedAt": "2026-11-21T00:00:00Z" if failed else "",
                     "rebuildRetryCount": retries}}


def engine(vol, modes, rebuilding=None):
    return {"metadata": {"name": vol + "-e-0"}, "spec": {"volumeName": vol},
            "status": {"replicaModeMap": modes, "rebuildStatus": rebuilding or {}}}


def lh_node(name, ready=True, allow=True, schedulable=None):
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "reason": "" if ready else "NodeDown"}]
    if schedulable is not None:
        conditions.append({"type": "Schedulable", "status": schedulable, "reason": "Disk full"})
    return {"metadata": {"name": name}, "spec": {"allowScheduling": allow},
            "status": {"conditions": conditions}}


def kube_node(name, cordoned=False):
    return {"metadata": {"name": name}, "spec": {"unschedulable": cordoned}}


NODES = [lh_node("miniserver"), lh_node("worker-1")]
KUBE = [kube_node("miniserver"), kube_node("worker-1")]


def one_volume(modes=None, **kw):
    vols = [volume("pvc-a", pvc="apps/a-data", **kw)]
    reps = [replica("pvc-a-r-1", "pvc-a", "miniserver")]
    return views(vols, reps, [engine("pvc-a", modes or {"pvc-a-r-1": "RW"})])


def test_validate_names_the_field_and_allowed_values():
    assert validate(2, ["apps/a"], 1, 60, 1) == []
    errors = validate(25, ["a-data"], 0, 0, 0)
    assert errors == [
        "replicas: 25 is out of range; allowed: 1 to 20",
        "pvcs: 'a-data' is not NAMESPACE/NAME",
        "concurrency: 0; allowed: 1 or more volumes at a time",
        "wait_timeout: 0; allowed: 1 or more seconds",
        "poll_interval: 0; allowed: more than 0 seconds"]


@pytest.mark.parametrize("value, said", [
    # true was read as 1: a rollback of {"pvc-arr": true} set one replica
    (True, "replicas_by_volume.pvc-arr: true is not an integer; allowed: 1 to 20"),
    (False, "replicas_by_volume.pvc-arr: false is not an integer; allowed: 1 to 20"),
    (2.5, "replicas_by_volume.pvc-arr: 2.5 is not an integer; allowed: 1 to 20"),
    (2.0, "replicas_by_volume.pvc-arr: 2.0 is not an integer; allowed: 1 to 20"),
    ("two", 'replicas_by_volume.pvc-arr: "two" is not an integer; allowed: 1 to 20'),
    (None, "replicas_by_volume.pvc-arr: null is not an integer; allowed: 1 to 20"),
    ([2], "replicas_by_volume.pvc-arr: [2] is not an integer; allowed: 1 to 20"),
    (0, "replicas_by_volume.pvc-arr: 0 is out of range; allowed: 1 to 20"),
    (21, "replicas_by_volume.pvc-arr: 21 is out of range; allowed: 1 to 20"),
    ("25", "replicas_by_volume.pvc-arr: 25 is out of range; allowed: 1 to 20"),
])
def test_replicas_by_volume_takes_integers_in_the_range_of_replicas(value, said):
    assert validate(None, [], 1, 60, 1, {"pvc-arr": value, "pvc-qdrant": 2}) == [said]


def test_replica_counts_are_whole_numbers_and_never_bools():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import replica_count
    assert [replica_count(v) for v in (1, 20, "2", " 3 ")] == [1, 20, 2, 3]
    assert [replica_count(v) for v in (True, False, 2.0, "2.0", "", None, {})] == [None] * 7
    assert validate(None, [], 1, 60, 1, {"pvc-a": 1, "pvc-b": "3", "pvc-c": 20}) == []
    # the same rule for replicas (the argument spec passes a bool through as an int)
    assert validate(True, [], 1, 60, 1) == ["replicas: true is not an integer; allowed: 1 to 20"]


def test_select_by_name_pvc_or_all_and_unknown_names():
    all_views = views([volume("pvc-a", pvc="apps/a"), volume("pvc-b", pvc="apps/b")], [], [])
    assert [v["name"] for v in select(all_views, [], [])[0]] == ["pvc-a", "pvc-b"]
    chosen, errors = select(all_views, ["pvc-b"], ["apps/a", "apps/b"])
    assert [v["name"] for v in chosen] == ["pvc-a", "pvc-b"] and errors == []
    _chosen, errors = select(all_views, ["pvc-x"], ["apps/x"])
    assert errors == ["names: no volume pvc-x; volumes: pvc-a, pvc-b",
                      "pvcs: no volume is bound to apps/x; claims: apps/a, apps/b"]


def test_node_eligibility_reasons():
    nodes = [lh_node("a"), lh_node("b", ready=False), lh_node("c", allow=False),
             lh_node("d"), lh_node("e", schedulable="False")]
    kube = [kube_node("a"), kube_node("b"), kube_node("c"), kube_node("d", cordoned=True), kube_node("e")]
    got = node_eligibility(nodes, kube, {})
    assert got["a"] is None
    assert got["b"] == "the node is not Ready (NodeDown)"
    assert "spec.allowScheduling false" in got["c"]
    assert got["d"] == "the node is cordoned and disable-scheduling-on-cordoned-node is true"
    assert got["e"] == "Longhorn marks it unschedulable (Disk full)"
    # a plan for after an uncordon; Longhorn's own condition says why it is unschedulable now
    cordoned = [lh_node("d", schedulable="False")]
    cordoned[0]["status"]["conditions"][1]["reason"] = "KubernetesNodeCordoned"
    assert node_eligibility(cordoned, [kube_node("d", cordoned=True)], {}, if_uncordoned=["d"]) == {"d": None}
    # with the setting false (even stored as per-engine JSON) a cordoned node takes replicas
    assert node_eligibility(nodes, kube, {"disable-scheduling-on-cordoned-node": "false"})["d"] is None


def test_plan_adds_on_the_node_without_a_replica():
    steps = plan(one_volume(), 2, node_eligibility(NODES, KUBE, {}))
    assert steps[0]["from"] == 1 and steps[0]["to"] == 2 and steps[0]["problems"] == []
    assert steps[0]["nodes_now"] == ["miniserver"] and steps[0]["add_on"] == ["worker-1"]
    assert plan_lines(steps) == [
        "pvc-a (apps/a-data): 1 -> 2 replicas; now on miniserver; adds 1 on worker-1"]
    tracker = plan_tracker(steps)
    assert tracker.has_difference and tracker.get_after() == {"pvc-a": 2}


def test_plan_refuses_when_the_only_other_node_is_cordoned():
    kube = [kube_node("miniserver"), kube_node("worker-1", cordoned=True)]
    steps = plan(one_volume(), 2, node_eligibility(NODES, kube, {}))
    assert steps[0]["problems"] == [
        "pvc-a needs 1 more replica(s) on node(s) without one, but no node can take one; "
        "excluded: worker-1 (the node is cordoned and disable-scheduling-on-cordoned-node is true)"]


def test_plan_refuses_unhealthy_detached_and_doubled_volumes():
    assert plan(one_volume(robustness="degraded"), 2, {"worker-1": None})[0]["problems"] == [
        "pvc-a is degraded, not healthy"]
    assert "Longhorn rebuilds replicas only while a volume is attached" in plan(
        one_volume(state="detached", robustness="unknown"), 2, {"worker-1": None})[0]["problems"][0]
    doubled = views([volume("pvc-a", 2)], [replica("r1", "pvc-a", "m"), replica("r2", "pvc-a", "m")],
                    [engine("pvc-a", {"r1": "RW", "r2": "RW"})])
    assert plan(doubled, 2, {"m": None})[0]["problems"] == [
        "pvc-a has more than one replica on a node: m, m"]


def test_plan_no_change_and_decrease():
    two = views([volume("pvc-a", 2)], [replica("r1", "pvc-a", "m"), replica("r2", "pvc-a", "w")],
                [engine("pvc-a", {"r1": "RW", "r2": "RW"})])
    assert plan(two, 2, {})[0]["changes"] is False
    assert not plan_tracker(plan(two, 2, {})).has_difference
    down = plan(two, 1, {})[0]
    assert down["changes"] and down["remove_count"] == 1 and down["remove_from_one_of"] == ["m", "w"]
    # Longhorn leaves an extra healthy replica in place: the plan names the one it deletes
    assert down["keep"] == [{"name": "r1", "node": "m"}] and down["remove"] == [{"name": "r2", "node": "w"}]
    assert plan_lines([down]) == ["pvc-a: 2 -> 1 replicas; now on m, w; keeps r1 on m; deletes r2 on w"]


def two_replicas(node=None, modes=None):
    return views([volume("pvc-a", 2, node=node)],
                 [replica("pvc-a-r-a", "pvc-a", "worker-1"), replica("pvc-a-r-b", "pvc-a", "miniserver")],
                 [engine("pvc-a", modes or {"pvc-a-r-a": "RW", "pvc-a-r-b": "RW"})])[0]


def test_survivors_keep_on_first_then_the_attached_node_then_running_then_name():
    # by name alone, worker-1's replica would stay
    assert survivors(two_replicas(), 1) == ([{"name": "pvc-a-r-a", "node": "worker-1"}],
                                            [{"name": "pvc-a-r-b", "node": "miniserver"}])
    # the node the volume is attached to (the engine's) before the name
    assert survivors(two_replicas(node="miniserver"), 1)[0] == [{"name": "pvc-a-r-b", "node": "miniserver"}]
    # keep_on before the attached node
    assert survivors(two_replicas(node="worker-1"), 1, ["miniserver"])[0] == [
        {"name": "pvc-a-r-b", "node": "miniserver"}]
    # a running replica before one still rebuilding
    assert survivors(two_replicas(modes={"pvc-a-r-a": "RW", "pvc-a-r-b": "WO"}), 1)[0] == [
        {"name": "pvc-a-r-a", "node": "worker-1"}]


def test_plan_refuses_to_go_down_without_a_healthy_replica_on_keep_on():
    reps = [replica("pvc-a-r-a", "pvc-a", "worker-1"), replica("pvc-a-r-b", "pvc-a", "miniserver", failed=True)]
    v = views([volume("pvc-a", 2)], reps, [engine("pvc-a", {"pvc-a-r-a": "RW"})])
    step = plan(v, 1, {}, ["miniserver"])[0]
    assert step["problems"] == [
        "pvc-a has no healthy replica on miniserver (keep_on); going down to 1 would keep only "
        "pvc-a-r-a on worker-1"]


def test_plan_deletes_extras_left_by_an_earlier_lowering():
    """numberOfReplicas is 1 already (the old order: lowered, then waited for Longhorn), yet
    two healthy replicas remain: the plan still changes, by deleting the extra one."""
    v = views([volume("pvc-a", 1, node="miniserver")],
              [replica("pvc-a-r-a", "pvc-a", "worker-1"), replica("pvc-a-r-b", "pvc-a", "miniserver")],
              [engine("pvc-a", {"pvc-a-r-a": "RW", "pvc-a-r-b": "RW"})])
    step = plan(v, 1, {}, ["miniserver"])[0]
    assert step["changes"] and step["remove"] == [{"name": "pvc-a-r-a", "node": "worker-1"}]
    assert plan_tracker([step]).has_difference


def test_rebuilds_in_flight_from_modes_and_rebuild_status():
    assert rebuilds_in_flight([engine("a", {"r1": "RW"}), engine("b", {"r2": "RW", "r3": "WO"})]) == {
        "b": ["r3"]}
    assert rebuilds_in_flight([engine("c", {"r4": "RW"}, {"tcp://x:1": {"isRebuilding": True}})]) == {
        "c": ["tcp://x:1"]}
    assert rebuilds_in_flight([engine("d", {"r5": "RW"}, {"tcp://y:1": {"isRebuilding": False}})]) == {}
    # a replica shows in both maps (by name, by address): one rebuild, named once
    assert rebuilds_in_flight([engine("e", {"r6": "WO"}, {"tcp://z:1": {"isRebuilding": True}})]) == {
        "e": ["r6"]}


def test_watch_done_only_with_n_running_on_n_nodes():
    before = one_volume()[0]
    w = Watch(before, 2)
    reps = [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica("pvc-a-r-2", "pvc-a", "worker-1")]
    rebuilding = views([volume("pvc-a", 2, robustness="degraded")], reps,
                       [engine("pvc-a", {"pvc-a-r-1": "RW", "pvc-a-r-2": "WO"})])[0]
    state, text = w.observe(rebuilding)
    assert state == "waiting" and text == (
        "pvc-a: degraded, 1/2 replicas running on 1 node(s), rebuilding pvc-a-r-2")
    healthy = views([volume("pvc-a", 2)], reps, [engine("pvc-a", {"pvc-a-r-1": "RW", "pvc-a-r-2": "RW"})])[0]
    assert w.observe(healthy) == ("done", "pvc-a: healthy, 2/2 replicas running on 2 node(s)")
    # healthy as Longhorn says, but both replicas on one node: not done
    same = [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica("pvc-a-r-2", "pvc-a", "miniserver")]
    doubled = views([volume("pvc-a", 2)], same, [engine("pvc-a", {"pvc-a-r-1": "RW", "pvc-a-r-2": "RW"})])[0]
    assert Watch(before, 2).observe(doubled)[0] == "waiting"


def test_watch_stops_on_a_failed_rebuild():
    w = Watch(one_volume()[0], 2)
    reps = [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica("pvc-a-r-2", "pvc-a", "worker-1", failed=True)]
    failed = views([volume("pvc-a", 2, robustness="degraded")], reps, [engine("pvc-a", {"pvc-a-r-1": "RW"})])[0]
    assert w.observe(failed) == ("failed", "pvc-a: a rebuild failed: replica pvc-a-r-2 on worker-1")


def test_watch_stops_when_the_volume_detaches_during_the_change():
    w = Watch(one_volume()[0], 2)
    reps = [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica("pvc-a-r-2", "pvc-a", "worker-1", failed=True)]
    detached = views([volume("pvc-a", 2, state="detached", robustness="unknown")], reps,
                     [engine("pvc-a", {"pvc-a-r-1": "RW", "pvc-a-r-2": "ERR"})])[0]
    # the detach is the cause; the failed replica is its effect
    assert w.observe(detached) == ("failed", "pvc-a: the volume is detached, no longer attached; Longhorn rebuilds"
                                             " replicas only while a volume is attached and fails a rebuild when it"
                                             " detaches")
    assert Watch(one_volume()[0], 2).observe(dict(detached, state="detaching"))[1].startswith(
        "pvc-a: the volume is detaching, no longer attached")


def rebuilding_second(second="pvc-a-r-2", retries=0):
    """pvc-a degraded: pvc-a-r-1 running on miniserver, ``second`` rebuilding on worker-1."""
    return views([volume("pvc-a", 2, robustness="degraded")],
                 [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica(second, "pvc-a", "worker-1", retries=retries)],
                 [engine("pvc-a", {"pvc-a-r-1": "RW", second: "WO"})])[0]


def test_watch_stops_on_a_repeated_rebuild():
    w = Watch(one_volume()[0], 2)
    assert w.observe(rebuilding_second())[0] == "waiting"
    # the first attempt vanished unseen as failed; a second replica rebuilds: a storm
    state, text = w.observe(rebuilding_second("pvc-a-r-3"))
    assert state == "failed" and text.startswith("pvc-a: rebuild repeated (2 rebuilds for 1 new replica(s)")


def test_watch_stops_on_a_rebuild_longhorn_retries_in_place_even_when_the_failure_went_unseen():
    """CheckAndReuseFailedReplica: the failed replica is reused, same name, failedAt cleared,
    rebuildRetryCount one up. Between two reads the failure can come and go: by names and
    failedAt alone the guard would see one replica rebuilding all along."""
    w = Watch(one_volume()[0], 2)
    assert w.observe(rebuilding_second())[0] == "waiting"
    assert w.observe(rebuilding_second(retries=1)) == (
        "failed", "pvc-a: a rebuild failed: replica pvc-a-r-2 on worker-1 (Longhorn retries it in place:"
                  " rebuildRetryCount 1)")
    # retries from before the change are not this run's
    before = views([volume("pvc-a", 2, robustness="degraded")],
                   [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica("pvc-a-r-2", "pvc-a", "worker-1", failed=True, retries=2)],
                   [engine("pvc-a", {"pvc-a-r-1": "RW"})])[0]
    assert Watch(before, 2).observe(rebuilding_second(retries=2))[0] == "waiting"


def test_watch_ignores_failures_from_before_the_patch():
    reps = [replica("pvc-a-r-1", "pvc-a", "miniserver"), replica("pvc-a-r-0", "pvc-a", "worker-1", failed=True)]
    before = views([volume("pvc-a")], reps, [engine("pvc-a", {"pvc-a-r-1": "RW"})])[0]
    w = Watch(before, 2)
    assert w.observe(before)[0] == "waiting"


def test_batches_keep_the_plan_order_and_skip_no_change():
    steps = [{"volume": "a", "changes": True}, {"volume": "b", "changes": False},
             {"volume": "c", "changes": True}, {"volume": "d", "changes": True}]
    assert [[s["volume"] for s in b] for b in batches(steps)] == [["a"], ["c"], ["d"]]
    assert [[s["volume"] for s in b] for b in batches(steps, "2")] == [["a", "c"], ["d"]]
    assert batches([], 1) == []
    with pytest.raises(ValueError, match="concurrency"):
        batches(steps, 0)


def test_step_label_names_the_volume_its_claim_and_the_counts():
    assert step_label({"volume": "pvc-arr", "pvc": "apps/arr-config", "from": 1, "to": 2}) == \
        "pvc-arr (apps/arr-config): 1 -> 2 replicas"
    assert step_label({"volume": "pvc-x", "pvc": None, "from": 2, "to": 1}) == "pvc-x: 2 -> 1 replicas"


def test_merge_results_keeps_every_prior_count_a_failed_batch_included():
    ok = {"rollback": {"a": 1}, "done": ["a"], "events": [{"t": 0.1, "volume": "a", "message": "a: x"}]}
    failed = {"failed": True, "rollback": {"b": 1}, "done": [], "events": [{"t": 0.2, "volume": "b", "message": "b: y"}]}
    refused = {"failed": True, "msg": "Stopped before c"}  # nothing patched: no rollback key
    merged = merge_results([ok, failed, refused])
    assert merged["rollback"] == {"a": 1, "b": 1}
    assert merged["done"] == ["a"]
    assert [(e["batch"], e["volume"]) for e in merged["events"]] == [(1, "a"), (2, "b")]
    assert merge_results([]) == {"rollback": {}, "done": [], "events": []}


def test_auto_balance_the_volume_overrides_the_setting_unless_ignored():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import auto_balance
    assert auto_balance(None, "best-effort") == "best-effort"
    assert auto_balance("ignored", '{"v1":"least-effort"}') == "least-effort"
    assert auto_balance("disabled", "best-effort") == "disabled"
    assert auto_balance("best-effort", "disabled") == "best-effort"
    assert auto_balance("", None) == "disabled"


def test_rebuilds_disabled_only_when_the_plan_adds_replicas():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import rebuilds_disabled
    up = [{"volume": "a", "changes": True, "add_count": 1}, {"volume": "b", "changes": False, "add_count": 1}]
    down = [{"volume": "a", "changes": True, "remove_count": 1}]
    assert rebuilds_disabled(up, {"concurrent-replica-rebuild-per-node-limit": "0"}) == (
        "concurrent-replica-rebuild-per-node-limit is 0, so Longhorn rebuilds no replica of a volume that has one"
        " (a would get none); set it to 1 first (longhorn_settings)")
    assert rebuilds_disabled(up, {"concurrent-replica-rebuild-per-node-limit": '{"v1":"0"}'}) is not None
    assert rebuilds_disabled(up, {"concurrent-replica-rebuild-per-node-limit": "1"}) is None
    assert rebuilds_disabled(down, {"concurrent-replica-rebuild-per-node-limit": "0"}) is None
    assert rebuilds_disabled(up, {}) is None
