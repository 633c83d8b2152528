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
    # back to one: the extra replica goes
    scale(sim, "pvc-arr", 1)
    sim.wait("one replica", lambda: sim.replica_nodes()["pvc-arr"] == ["miniserver"])
