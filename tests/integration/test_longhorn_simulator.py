"""The Longhorn simulator itself: replica placement follows replica-soft-anti-affinity as
Longhorn's scheduler does, which is why runbook 001 sets it to false before adding
replicas, and why longhorn_volume_replicas checks placement before it writes."""

import json

import pytest


def scale(sim, volume, n):
    sim.cluster.kubectl("patch", "volumes.longhorn.io", volume, "-n", "longhorn-system", "--type=merge",
                        "-p", json.dumps({"spec": {"numberOfReplicas": n}}))


@pytest.mark.parametrize("soft", ["true", "false"])
def test_second_replica_with_worker_1_cordoned(longhorn, soft):
    sim = longhorn
    sim.cluster.kubectl("patch", "settings.longhorn.io", "replica-soft-anti-affinity", "-n", "longhorn-system",
                        "--type=merge", "-p", json.dumps({"value": soft}))
    scale(sim, "pvc-arr", 2)
    if soft == "true":
        # the only usable node already has a replica: soft anti-affinity puts the second there too
        sim.wait("two replicas", lambda: sim.replica_nodes()["pvc-arr"] == ["miniserver", "miniserver"])
        sim.wait("healthy", lambda: sim.volumes()["pvc-arr"]["status"]["robustness"] == "healthy")
    else:
        sim.wait("scheduling failure", lambda: sim.volumes()["pvc-arr"]["status"]["conditions"][0]["status"] == "False")
        volume = sim.volumes()["pvc-arr"]["status"]
        assert volume["conditions"][0]["reason"] == "ReplicaSchedulingFailure"
        assert sim.replica_nodes()["pvc-arr"] == ["miniserver"]
        assert volume["robustness"] == "degraded"  # one of two replicas
        # since when (ReconcileEngineReplicaState): a replacement replica's wait counts from it
        assert volume["lastDegradedAt"].endswith("Z")
    # back to one by lowering numberOfReplicas alone (what core_platform_rollback did before):
    # Longhorn leaves the extra healthy replica in place (cleanupExtraHealthyReplicas removes
    # one only for an eviction, data locality or replica auto-balance, which runbook 001 disables)
    sim.cluster.kubectl("patch", "settings.longhorn.io", "replica-auto-balance", "-n", "longhorn-system",
                        "--type=merge", "-p", json.dumps({"value": "disabled"}))
    scale(sim, "pvc-arr", 1)
    if soft == "true":
        # a later change the same reconcile pass must act on: once it is done, that pass
        # has read pvc-arr at one replica too
        scale(sim, "pvc-homarr", 2)
        sim.wait("pvc-homarr's second replica", lambda: len(sim.replica_nodes()["pvc-homarr"]) == 2)
        assert sim.replica_nodes()["pvc-arr"] == ["miniserver", "miniserver"]
        assert not [e for e in sim.history() if e["event"] == "replica-deleted"]
        # with replica auto-balance on, Longhorn removes it (the rule's other side)
        sim.cluster.kubectl("patch", "settings.longhorn.io", "replica-auto-balance", "-n", "longhorn-system",
                            "--type=merge", "-p", json.dumps({"value": "least-effort"}))
    sim.wait("one replica", lambda: sim.replica_nodes()["pvc-arr"] == ["miniserver"])
    sim.wait("healthy", lambda: sim.volumes()["pvc-arr"]["status"]["robustness"] == "healthy")
    assert sim.volumes()["pvc-arr"]["status"]["lastDegradedAt"] == ""
    # Longhorn's webhook refuses to delete a volume's last healthy replica (validateReplicaDeletion)
    only = [r["metadata"]["name"] for r in sim.cluster.get_json("replicas.longhorn.io", "-n", "longhorn-system")["items"]
            if r["spec"]["volumeName"] == "pvc-arr"]
    refused = sim.cluster.kubectl("delete", "replicas.longhorn.io", only[0], "-n", "longhorn-system", check=False)
    assert refused.returncode != 0
    assert "it is the only healthy replica of volume pvc-arr" in refused.stderr, refused.stderr


def test_the_webhook_refuses_the_values_longhorn_refuses(longhorn):
    """As longhorn-manager v1.10 parses settings (types.ValidateSetting): integers by
    strconv.ParseInt (no "1_0"), a data-engine-specific value as JSON with a string for
    each engine its default lists, JSON nowhere else."""
    refused = {
        ("concurrent-replica-rebuild-per-node-limit", "1_0"): 'strconv.ParseInt: parsing "1_0": invalid syntax',
        ("default-replica-count", '{"v1":"2"}'): "mismatched data engines for setting default-replica-count",
        ("default-replica-count", '{"v1":2,"v2":2}'): "cannot unmarshal number",
        ("replica-auto-balance", '{"v1":"disabled","v2":"disabled"}'):
            "JSON-formatted value is not supported for non-data-engine-specific setting replica-auto-balance",
    }
    before = longhorn.settings()
    for (name, value), refusal in refused.items():
        r = longhorn.cluster.kubectl("patch", "settings.longhorn.io", name, "-n", "longhorn-system", "--type=merge",
                                     "-p", json.dumps({"value": value}), check=False)
        assert r.returncode != 0 and refusal in r.stderr, (name, value, r.stderr)
    assert longhorn.settings() == before
    # what Longhorn does accept: a sign and spaces around an integer
    r = longhorn.cluster.kubectl("patch", "settings.longhorn.io", "concurrent-replica-rebuild-per-node-limit", "-n",
                                 "longhorn-system", "--type=merge", "-p", json.dumps({"value": "+3"}), check=False)
    assert r.returncode == 0, r.stderr
    longhorn.cluster.kubectl("patch", "settings.longhorn.io", "concurrent-replica-rebuild-per-node-limit", "-n",
                             "longhorn-system", "--type=merge", "-p",
                             json.dumps({"value": before["concurrent-replica-rebuild-per-node-limit"]}))


def _pod(name, node, claim):
    """A bare pod on ``node`` (nodeName: no scheduler) that mounts ``claim``."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "attach"}},
            "spec": {"nodeName": node, "tolerations": [{"operator": "Exists"}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
                     "containers": [{"name": "app", "image": "registry.example/app:1"}]}}


def test_volume_attachments_of_the_real_attach_detach_controller_move_the_volume(longhorn):
    """kube-controller-manager's attach/detach controller makes a VolumeAttachment for the
    node of each pod that mounts a claim, refuses a second node for an RWO volume
    (Multi-Attach), and deletes the VolumeAttachment when the pod goes; the simulator,
    as the csi-attacher with Longhorn's CSI plugin, attaches and detaches the Longhorn
    volume for them and holds a deleted one with its finalizer until the volume is free."""
    sim, c = longhorn, longhorn.cluster
    finalizer = "external-attacher/driver-longhorn-io"

    def attachments():
        return {a["spec"]["nodeName"]: a for a in sim.attachments("pvc-arr-lts")}

    def volume():
        st = sim.volumes()["pvc-arr-lts"]["status"]
        return st["state"], st.get("currentNodeID")

    try:
        c.kubectl("apply", "-f", "-", input=json.dumps(_pod("writer-a", "miniserver", "arr-lts-config")))
        sim.wait("the attachment on miniserver", lambda: (attachments().get("miniserver") or {}).get(
            "status", {}).get("attached") is True)
        va = attachments()["miniserver"]
        assert va["spec"]["attacher"] == "driver.longhorn.io" and finalizer in va["metadata"]["finalizers"]
        assert volume() == ("attached", "miniserver")  # the fixture had it there already: no move

        # a second node for the RWO volume: the attach/detach controller refuses it
        c.kubectl("apply", "-f", "-", input=json.dumps(_pod("writer-b", "worker-1", "arr-lts-config")))

        def multi_attach():
            return [e["message"] for e in c.get_json("events", "-n", "apps", "--field-selector",
                                                     "involvedObject.name=writer-b")["items"]
                    if e["reason"] == "FailedAttachVolume"]
        sim.wait("the Multi-Attach error", multi_attach)
        assert "Multi-Attach error for volume \"pvc-arr-lts\"" in multi_attach()[0]
        assert "worker-1" not in attachments() and volume() == ("attached", "miniserver")

        # the first writer goes: detached from miniserver first, then attached to worker-1
        c.kubectl("delete", "pod", "writer-a", "-n", "apps", "--wait=true")
        sim.wait("the attachment on worker-1", lambda: (attachments().get("worker-1") or {}).get(
            "status", {}).get("attached") is True)
        assert "miniserver" not in attachments() and volume() == ("attached", "worker-1")
        events = [e for e in sim.history() if e.get("volume") == "pvc-arr-lts"]
        released = [e["t"] for e in events if e["event"] == "attachment-released" and e["node"] == "miniserver"]
        detached = [e["t"] for e in events if e["event"] == "detached" and e["node"] == "miniserver"]
        started = [e["t"] for e in events if e["event"] == "attach-start" and e["node"] == "worker-1"]
        assert detached and released and started and detached[0] <= released[0] < started[0], events

        # a volume that never detaches: the deleted VolumeAttachment stays, attached, with the error
        sim.set_faults(stuck_attached=["pvc-arr-lts"])
        c.kubectl("delete", "pod", "writer-b", "-n", "apps", "--wait=true")
        sim.wait("the detach error", lambda: (attachments().get("worker-1") or {}).get("status", {}).get(
            "detachError"))
        stuck = attachments()["worker-1"]
        assert stuck["metadata"].get("deletionTimestamp") and stuck["status"]["attached"] is True
        assert stuck["status"]["detachError"]["message"].endswith(
            "Failed to detach volume pvc-arr-lts from node worker-1")
        assert volume() == ("attached", "worker-1")
        sim.set_faults()
        sim.wait("the volume detached and its attachment gone", lambda: not attachments()
                 and volume() == ("detached", ""))
    finally:
        sim.set_faults()
        c.kubectl("delete", "pod", "-n", "apps", "-l", "homelab.k8s-ha/fixture=attach", "--wait=true")
