"""longhorn_volume_replicas against the Longhorn simulator on the real API server.

Six volumes with one replica on miniserver. Runbook 001 wants two per volume, one per
node, one volume at a time, and a stop at the first failing or repeating rebuild."""

import json

import pytest

from observe import audit_size, writes

PLAYBOOK = "tests/integration/playbooks/modules.yml"
VOLUMES = ["pvc-arr", "pvc-arr-lts", "pvc-arr-lts2", "pvc-elasticsearch", "pvc-homarr", "pvc-qdrant"]
FAST = {"poll_interval": 0.3, "wait_timeout": 60}


@pytest.fixture
def opted_in(longhorn):
    """worker-1 uncordoned (Longhorn places no replica on a cordoned node by default) and
    the runbook's settings in place; worker-1 is cordoned again afterwards."""
    c = longhorn.cluster
    c.kubectl("uncordon", "worker-1")
    for name, value in (("replica-soft-anti-affinity", "false"),
                        ("concurrent-replica-rebuild-per-node-limit", "1")):
        c.kubectl("patch", "settings.longhorn.io", name, "-n", "longhorn-system", "--type=merge",
                  "-p", json.dumps({"value": value}))
    longhorn.wait("worker-1 schedulable for Longhorn", lambda: all(
        cond["status"] == "True" for n in longhorn.cluster.get_json(
            "nodes.longhorn.io", "-n", "longhorn-system")["items"]
        for cond in n.get("status", {}).get("conditions", [])))
    yield longhorn
    c.kubectl("cordon", "worker-1")


def counts(sim):
    return {k: v["spec"]["numberOfReplicas"] for k, v in sim.volumes().items()}


def up_to_two_with(sim, run_playbook, **faults):
    """The run to two replicas per volume with ``faults`` set; (run, audit offset before it)."""
    sim.set_faults(**faults)
    offset = audit_size(sim.cluster)
    return run_playbook(sim.cluster, PLAYBOOK, extra_vars={"replicas_args": dict(FAST, replicas=2),
                                                           "may_fail": True}), offset


def test_check_then_one_at_a_time_idempotent_and_rollback(opted_in, run_playbook):
    sim = opted_in
    c = sim.cluster
    offset = audit_size(c)
    check = run_playbook(c, PLAYBOOK, check=True, extra_vars={"replicas_args": dict(FAST, replicas=2)})
    assert check.rc == 0, check.stdout[-3000:]
    assert check.result["changed"] is True and check.result["diff"]["after"] == {v: 2 for v in VOLUMES}
    assert [s["add_on"] for s in check.result["plan"]] == [["worker-1"]] * 6
    assert check.result["plan_lines"][0] == (
        "pvc-arr (apps/arr-config): 1 -> 2 replicas; now on miniserver; adds 1 on worker-1")
    by_claim = run_playbook(c, PLAYBOOK, check=True, extra_vars={"replicas_args": dict(
        FAST, replicas=2, pvcs=["apps/qdrant-storage"])})
    assert [s["volume"] for s in by_claim.result["plan"]] == ["pvc-qdrant"]
    assert writes(c, offset, "volumes") == [] and set(counts(sim).values()) == {1}

    apply = run_playbook(c, PLAYBOOK, extra_vars={"replicas_args": dict(FAST, replicas=2)})
    assert apply.rc == 0, apply.stdout[-3000:]
    assert apply.result["changed"] is True and apply.result["done"] == VOLUMES
    assert apply.result["rollback"] == {v: 1 for v in VOLUMES}
    assert sim.replica_nodes() == {v: ["miniserver", "worker-1"] for v in VOLUMES}
    assert all(v["status"]["robustness"] == "healthy" for v in sim.volumes().values())
    # Longhorn's own record: six rebuilds, never two at once
    starts = [e["volume"] for e in sim.history() if e["event"] == "rebuild-start"]
    assert starts == VOLUMES and sim.max_concurrent_rebuilds() == 1
    assert len(writes(c, offset, "volumes")) == 6
    progress = [e["message"] for e in apply.result["events"] if e["volume"] == "pvc-arr"]
    assert progress[0] == "numberOfReplicas 1 -> 2"
    assert progress[-1] == "pvc-arr: healthy, 2/2 replicas running on 2 node(s)"

    offset = audit_size(c)
    again = run_playbook(c, PLAYBOOK, extra_vars={"replicas_args": dict(FAST, replicas=2)})
    assert again.rc == 0 and again.result["changed"] is False and again.result["done"] == []
    assert writes(c, offset, "volumes") == []

    undo = run_playbook(c, PLAYBOOK, extra_vars={"replicas_args": dict(FAST, replicas=1)})
    assert undo.rc == 0 and undo.result["done"] == VOLUMES, undo.stdout[-3000:]
    # the fixture's replica-auto-balance is best-effort: Longhorn would remove an extra replica
    # of its own choosing while the module deletes the other one, so each volume is held off
    # auto-balance while it goes down, and given its own value back after
    arr = [e["message"] for e in undo.result["events"] if e["volume"] == "pvc-arr"]
    assert arr[:2] == ["replicaAutoBalance not set -> disabled until the change is done (Longhorn would pick"
                       " the replica to remove itself)", "numberOfReplicas 2 -> 1"]
    assert arr[-1] == "replicaAutoBalance back to not set"
    assert not any("replicaAutoBalance" in v["spec"] for v in sim.volumes().values())
    assert set(counts(sim).values()) == {1}
    assert sim.replica_nodes() == {v: ["miniserver"] for v in VOLUMES}


def test_failing_rebuild_stops_the_run_after_that_volume(opted_in, run_playbook):
    sim = opted_in
    c = sim.cluster
    run, offset = up_to_two_with(sim, run_playbook, fail_rebuild=["pvc-arr-lts"])
    r = run.result
    assert r["failed"] is True and r["done"] == ["pvc-arr"]
    assert r["stopped"] == {"volumes": ["pvc-arr-lts"], "patched": True, "reason": r["stopped"]["reason"]}
    assert "a rebuild failed: replica pvc-arr-lts-r-" in r["stopped"]["reason"]
    assert r["remaining"] == VOLUMES[1:] and r["rollback"] == {"pvc-arr": 1, "pvc-arr-lts": 1}
    # Longhorn reused the failed replica in place (CheckAndReuseFailedReplica): the same name,
    # one retry; the module stopped on it whether or not it read the replica while failed
    failed = [e["replica"] for e in sim.history() if e["event"] == "rebuild-failed" and e["volume"] == "pvc-arr-lts"]
    reused = [(e["replica"], e["retries"]) for e in sim.history()
              if e["event"] == "replica-reused" and e["volume"] == "pvc-arr-lts"]
    assert len(failed) == 1 and reused == [(failed[0], 1)], sim.history()
    assert failed[0] in r["stopped"]["reason"]
    # the volumes after it were never touched
    assert sorted(e["objectRef"]["name"] for e in writes(c, offset, "volumes")) == ["pvc-arr", "pvc-arr-lts"]
    assert counts(sim) == dict({v: 1 for v in VOLUMES}, **{"pvc-arr": 2, "pvc-arr-lts": 2})
    assert sim.replica_nodes()["pvc-arr"] == ["miniserver", "worker-1"]
    assert not [e for e in sim.history() if e["event"] == "rebuild-start" and e["volume"] in VOLUMES[2:]]


def test_looping_rebuild_is_stopped_as_a_storm(opted_in, run_playbook):
    sim = opted_in
    sim.set_faults(loop_rebuild=["pvc-arr"])
    run = run_playbook(sim.cluster, PLAYBOOK, extra_vars={"replicas_args": dict(FAST, replicas=2),
                                                          "may_fail": True})
    r = run.result
    assert r["failed"] is True and r["done"] == [] and r["stopped"]["volumes"] == ["pvc-arr"]
    assert ("rebuild repeated" in r["stopped"]["reason"]
            or "a rebuild failed" in r["stopped"]["reason"]), r["stopped"]
    assert counts(sim) == dict({v: 1 for v in VOLUMES}, **{"pvc-arr": 2})


@pytest.mark.parametrize("setup, message", [
    ("cordoned", "worker-1 (the node is cordoned and disable-scheduling-on-cordoned-node is true)"),
    ("down", "worker-1 (the node is not Ready (NodeDown))"),
    ("rebuilding", "a rebuild is in flight: pvc-homarr rebuilding"),
    ("limit-0", "concurrent-replica-rebuild-per-node-limit is 0, so Longhorn rebuilds no replica of a volume that"
                " has one (pvc-arr, pvc-arr-lts would get none); set it to 1 first (longhorn_settings)"),
])
def test_refuses_before_any_write(opted_in, run_playbook, setup, message):
    sim = opted_in
    c = sim.cluster
    if setup == "cordoned":
        c.kubectl("cordon", "worker-1")
    elif setup == "limit-0":  # replenishReplicas then creates no replica for a volume that has one
        c.kubectl("patch", "settings.longhorn.io", "concurrent-replica-rebuild-per-node-limit", "-n",
                  "longhorn-system", "--type=merge", "-p", '{"value": "0"}')
    elif setup == "down":
        sim.set_faults(down_nodes=["worker-1"])
    else:  # somebody else's change is rebuilding right now (and rebuilds slowly)
        sim.set_faults(loop_rebuild=["pvc-homarr"])
        c.kubectl("patch", "volumes.longhorn.io", "pvc-homarr", "-n", "longhorn-system",
                  "--type=merge", "-p", '{"spec":{"numberOfReplicas":2}}')
        sim.wait("a rebuild in flight", lambda: any(
            "WO" in (e.get("status", {}).get("replicaModeMap") or {}).values()
            for e in c.get_json("engines.longhorn.io", "-n", "longhorn-system")["items"]))
    sim.wait("Longhorn sees it", lambda: setup in ("rebuilding", "limit-0") or any(
        cond["status"] == "False" for n in c.get_json("nodes.longhorn.io", "-n", "longhorn-system")["items"]
        for cond in n.get("status", {}).get("conditions", [])))
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"replicas_args": dict(FAST, replicas=2, names=VOLUMES[:2]),
                                                "may_fail": True})
    assert run.result["failed"] is True
    assert run.result["msg"].startswith("Nothing was changed: ") and message in run.result["msg"]
    assert writes(c, offset, "volumes") == []


def test_a_volume_that_detaches_during_its_rebuild_stops_the_run_there(opted_in, run_playbook):
    """longhorn-manager rebuilds only while a volume is attached (replenishReplicas) and fails
    the rebuilding replica when the volume detaches (closeVolumeDependentResources); the
    simulator does the same, so the run stops at that volume, saying why."""
    sim = opted_in
    c = sim.cluster
    run, offset = up_to_two_with(sim, run_playbook, detach_on_rebuild=["pvc-arr-lts"])
    r = run.result
    assert r["failed"] is True and r["done"] == ["pvc-arr"], run.stdout[-3000:]
    assert r["stopped"]["volumes"] == ["pvc-arr-lts"]
    assert r["stopped"]["reason"].startswith("pvc-arr-lts: the volume is detach")
    assert "Longhorn rebuilds replicas only while a volume is attached" in r["msg"]
    assert r["rollback"] == {"pvc-arr": 1, "pvc-arr-lts": 1}
    lts = [e for e in sim.history() if e.get("volume") == "pvc-arr-lts"]
    assert [e["event"] for e in lts if e["event"] in ("rebuild-start", "detached", "rebuild-failed")][:3] == [
        "rebuild-start", "detached", "rebuild-failed"]
    assert next(e for e in lts if e["event"] == "rebuild-failed")["why"] == "the volume detached during the rebuild"
    # the volumes after it were never touched
    assert sorted(e["objectRef"]["name"] for e in writes(c, offset, "volumes")) == ["pvc-arr", "pvc-arr-lts"]
