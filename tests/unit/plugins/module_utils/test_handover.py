from ansible_collections.homelab.k8s_ha.plugins.module_utils.handover import (
    is_done,
    owned_pods,
    phase,
    refusal,
    rwo_claims,
    volumes_in_use,
)


def deploy(name, replicas, claims=("db-data",), uid=None):
    return {"metadata": {"name": name, "uid": uid or name + "-uid"},
            "spec": {"replicas": replicas, "template": {"spec": {
                "containers": [{"name": "db", "image": "postgres:16"}],
                "volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}}}


def rs(name, owner):
    return {"metadata": {"name": name, "ownerReferences": [
        {"kind": "Deployment", "name": owner, "uid": owner + "-uid", "controller": True}]}}


def pod(name, rs_name, phase_="Running", ready=True, node="miniserver", terminating=False):
    meta = {"name": name, "ownerReferences": [{"kind": "ReplicaSet", "name": rs_name, "controller": True}]}
    if terminating:
        meta["deletionTimestamp"] = "2026-11-22T10:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase_, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


PVCS = [{"metadata": {"name": "db-data"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
        {"metadata": {"name": "media"}, "spec": {"accessModes": ["ReadWriteMany"]}}]


def test_pods_belong_by_owner_not_by_overlapping_selector():
    sets = [rs("db-5f7", "db"), rs("db-primary-9c1", "db-primary")]
    pods = [pod("db-5f7-a", "db-5f7"), pod("db-primary-9c1-b", "db-primary-9c1")]
    assert [p["metadata"]["name"] for p in owned_pods(deploy("db", 1), sets, pods)] == ["db-5f7-a"]
    assert [p["metadata"]["name"] for p in owned_pods(deploy("db-primary", 1), sets, pods)] == ["db-primary-9c1-b"]


def test_only_single_writer_claims_count():
    assert rwo_claims(deploy("db", 1, claims=("db-data", "media")), PVCS) == ["db-data"]
    assert rwo_claims(deploy("web", 1, claims=()), PVCS) == []


def test_refusals_name_the_reason_and_a_fit_passes():
    primary, standby = deploy("db-primary", 1), deploy("db-standby", 0)
    assert refusal(primary, standby, [], [], PVCS, 1) is None
    assert "two writers already" in refusal(primary, deploy("db-standby", 1), [], [], PVCS, 1)
    assert "allowed 0 or 1" in refusal(primary, standby, [], [], PVCS, 2)
    other = deploy("db-standby", 0, claims=("other",))
    assert "would not take the data along" in refusal(primary, other, [], [], PVCS, 1)
    left = [pod("db-standby-x", "s", terminating=True, node="worker-1")]
    assert "pods left: db-standby-x (Running, Terminating, worker-1)" in refusal(primary, standby, [], left, PVCS, 1)


def test_a_completed_handover_is_done_and_a_half_one_is_not():
    primary, standby = deploy("db-primary", 0), deploy("db-standby", 1)
    up = [pod("db-standby-x", "s", node="worker-1")]
    assert is_done(primary, standby, [], up, 1)
    assert not is_done(primary, standby, [], [pod("db-standby-x", "s", ready=False)], 1)
    assert not is_done(deploy("db-primary", 1), standby, [], up, 1)
    assert not is_done(primary, standby, [pod("db-primary-y", "p", terminating=True)], up, 1)


def test_phases_in_order_never_start_while_the_old_writer_or_its_volume_remains():
    standby = deploy("db-standby", 0)
    old = [pod("db-primary-y", "p", terminating=True)]
    busy = volumes_in_use([{"name": "pvc-db", "state": "detaching", "node": "miniserver"}], [])
    assert phase(old, busy, standby, [], 1)[0] == "stopping"
    assert phase([], busy, standby, [], 1) == (
        "detaching", "waiting for the volumes to detach: Longhorn volume pvc-db is detaching on miniserver")
    free = volumes_in_use([{"name": "pvc-db", "state": "detached", "node": ""}], [])
    assert free == []
    attached = volumes_in_use([], [{"name": "csi-1", "pv": "pvc-db", "node": "miniserver", "attached": True}])
    assert phase([], attached, standby, [], 1)[0] == "detaching"
    assert phase([], [], standby, [], 1)[0] == "starting"
    up = deploy("db-standby", 1)
    assert phase([], [], up, [pod("db-standby-x", "s", ready=False, node="worker-1")], 1)[0] == "starting"
    assert phase([], [], up, [pod("db-standby-x", "s", node="worker-1")], 1) == (
        "done", "db-standby Ready: db-standby-x (Running, worker-1)")
