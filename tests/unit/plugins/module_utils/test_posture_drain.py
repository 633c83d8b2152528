import json

from ansible_collections.homelab.k8s_ha.plugins.module_utils.drain import classify, summary
from ansible_collections.homelab.k8s_ha.plugins.module_utils.posture import (
    datastore_from_api,
    datastore_from_host,
    decision,
    lease_report,
)


def node(name, labels=None, args=None):
    meta = {"name": name, "labels": dict(labels or {}), "annotations": {}}
    if args is not None:
        meta["annotations"]["k3s.io/node-args"] = json.dumps(args)
    return {"metadata": meta}


K3S_SERVER = {"node-role.kubernetes.io/control-plane": "true", "node.kubernetes.io/instance-type": "k3s"}


def test_datastore_from_the_api():
    assert datastore_from_api([node("m", K3S_SERVER), node("w")])["datastore"] == "sqlite"
    etcd = datastore_from_api([node("m", dict(K3S_SERVER, **{"node-role.kubernetes.io/etcd": "true"}))])
    assert etcd == {"datastore": "embedded etcd", "evidence": ["node-role.kubernetes.io/etcd=true on m"]}
    external = datastore_from_api([node("m", K3S_SERVER, ["server", "--datastore-endpoint", "********"])])
    assert external["datastore"] == "external datastore"
    assert datastore_from_api([node("m", K3S_SERVER, ["server", "--cluster-init"])])["datastore"] == "embedded etcd"
    assert datastore_from_api([node("kind-control-plane", {"node-role.kubernetes.io/control-plane": ""})])[
        "datastore"] == "unknown"


def test_datastore_from_server_1s_files():
    assert datastore_from_host({}, ["state.db", "state.db-wal"]) == {
        "datastore": "sqlite", "evidence": ["db/state.db exists"]}
    assert datastore_from_host({"datastore-endpoint": "mysql://u:secret@tcp(db:3306)/k3s"}, [])["evidence"] == [
        "config.yaml: datastore-endpoint mysql://..."]  # the credentials are not repeated
    assert datastore_from_host({"cluster-init": True}, ["etcd"])["datastore"] == "embedded etcd"
    assert datastore_from_host(None, [])["datastore"] == "unknown"


def test_leases_renew_when_renew_time_moves():
    def lease(name, holder, renew, transitions=0):
        return {"metadata": {"name": name}, "spec": {"holderIdentity": holder, "renewTime": renew,
                                                     "leaseTransitions": transitions}}
    first = [lease("kube-scheduler", "a", "t1"), lease("kube-controller-manager", "b", "t1")]
    second = [lease("kube-scheduler", "a", "t2"), lease("kube-controller-manager", "c", "t1", 1)]
    got = lease_report(first, second, ["kube-scheduler", "kube-controller-manager", "cloud-controller"])
    assert got["kube-scheduler"]["renewing"] is True and got["kube-scheduler"]["holder_changed"] is False
    assert got["kube-controller-manager"]["renewing"] is False and got["kube-controller-manager"]["holder_changed"]
    assert got["cloud-controller"] == {"present": False, "renewing": False, "holder": None}


def test_decision_follows_the_runbook():
    assert decision("sqlite", ["miniserver"]).startswith("single-server sqlite (expected): keep the single-writer")
    assert "quorum needs three servers" in decision("embedded etcd", ["a", "b"])
    assert "survives one server loss" in decision("embedded etcd", ["a", "b", "c"])


def pod(owner=None, volumes=None, phase="Running", mirror=False):
    meta = {"name": "p", "namespace": "n", "annotations": {}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    if mirror:
        meta["annotations"]["kubernetes.io/config.mirror"] = "abc"
    return {"metadata": meta, "spec": {"volumes": volumes or []}, "status": {"phase": phase}}


def test_classify_like_kubectl_drain():
    assert classify(pod("DaemonSet"))[0] == "skip"
    assert classify(pod("DaemonSet"), ignore_daemonsets=False)[0] == "refuse"
    assert classify(pod(mirror=True)) == ("skip", "static (mirror) pod")
    assert classify(pod("ReplicaSet")) == ("evict", "")
    assert classify(pod(None)) == ("evict", "not managed by a controller: deleted for good (--force)")
    assert classify(pod(None), force=False)[0] == "refuse"
    assert classify(pod("ReplicaSet", [{"name": "tmp", "emptyDir": {}}]))[1] == (
        "its emptyDir data is lost (--delete-emptydir-data)")
    assert classify(pod("ReplicaSet", [{"name": "tmp", "emptyDir": {}}]), delete_emptydir_data=False)[0] == "refuse"


def test_summary_verdict():
    rows = [{"namespace": "a", "name": "x", "outcome": "evicted", "detail": ""},
            {"namespace": "b", "name": "y", "outcome": "blocked", "detail": "HTTP 429: budget"}]
    lines, ok = summary("w", rows, None)
    assert not ok and lines[-1] == "1 pod(s) would be evicted, 0 skipped, 1 blocked"
    assert summary("w", rows[:1], None)[1] is True
    assert summary("w", rows[:1], "HTTP 403: forbidden")[1] is False
