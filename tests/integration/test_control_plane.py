"""The local control plane is the real thing: version, RBAC, audit, scheduler,
node-lifecycle controller and taint-based eviction."""

import datetime
import json
import subprocess
import time

from observe import audit_entries, audit_size
from localcluster import read_versions


def test_api_server_is_the_pinned_kube_apiserver(cluster):
    status, body = cluster.api_get("/version")
    assert status == 200
    assert json.loads(body)["gitVersion"] == read_versions()["KUBE_VERSION"]


def test_scheduler_and_controller_manager_leases_are_renewing(cluster):
    def renew_times():
        items = cluster.get_json("lease", "-n", "kube-system")["items"]
        return {i["metadata"]["name"]: (i["spec"].get("holderIdentity"), i["spec"].get("renewTime"))
                for i in items}

    first = renew_times()
    for name in ("kube-scheduler", "kube-controller-manager"):
        assert first[name][0], f"{name} lease has no holder"
    cluster.wait("both leader leases renewed", lambda: all(
        renew_times()[n][1] != first[n][1] for n in ("kube-scheduler", "kube-controller-manager")),
        30)


def test_rbac_is_enforced_for_a_service_account(cluster, tmp_path):
    ns = "rbac-probe"
    cluster.kubectl("create", "namespace", ns)
    try:
        cluster.kubectl("create", "serviceaccount", "nobody", "-n", ns)
        token = cluster.kubectl("create", "token", "nobody", "-n", ns).stdout.strip()
        kubeconfig = tmp_path / "token.kubeconfig"  # the token alone, no client certificate
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "c", "cluster": {"server": cluster.server,
                                                   "certificate-authority": str(cluster.pki / "ca.crt")}}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}]}))

        def as_sa(*args):
            return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", *args],
                                  capture_output=True, text=True, check=False)

        denied = as_sa("get", "nodes")
        assert denied.returncode != 0 and "Forbidden" in denied.stderr
        assert "system:serviceaccount:rbac-probe:nobody" in denied.stderr
        cluster.kubectl("create", "clusterrolebinding", "probe-view", "--clusterrole=view",
                        f"--serviceaccount={ns}:nobody")
        cluster.wait("RBAC grants view", lambda: as_sa("get", "pods", "-A").returncode == 0, 30)
        still_denied = as_sa("delete", "namespace", ns)
        assert still_denied.returncode != 0 and "Forbidden" in still_denied.stderr
    finally:
        cluster.kubectl("delete", "clusterrolebinding", "probe-view", "--ignore-not-found")
        cluster.kubectl("delete", "namespace", ns, "--wait=false")


def test_audit_log_records_writes_and_dry_runs(cluster):
    offset = audit_size(cluster)
    cluster.kubectl("create", "configmap", "audit-probe", "-n", "default",
                    "--dry-run=server", "--from-literal=a=b")

    def creates():
        return [e for e in audit_entries(cluster, offset)
                if e["verb"] == "create" and e["objectRef"].get("resource") == "configmaps"
                and e["objectRef"].get("name") == "audit-probe"]

    cluster.wait("the dry-run create in the audit log", creates, 30)
    assert all("dryRun=All" in e["requestURI"] for e in creates())
    assert cluster.kubectl("get", "configmap", "audit-probe", "-n", "default",
                           check=False).returncode != 0  # the dry run wrote nothing


def _ts(stamp):
    """Seconds since the epoch of an RFC 3339 API timestamp."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _pods(cluster, ns, selector):
    return cluster.get_json("pods", "-n", ns, "-l", selector)["items"]


def _deploy(cluster, name, ns, replicas, pod_spec):
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": dict({"containers": [{"name": "c", "image": "probe"}]},
                                           **pod_spec)}}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))


def test_three_worker_fixture_is_placed_by_the_scheduler(three_worker):
    c = three_worker
    placed = {p["metadata"]["labels"]["app"]: p["spec"]["nodeName"]
              for p in c.get_json("pods", "-n", "media")["items"]}
    assert placed == {"sonarr": "k3s-w1", "prowlarr": "k3s-w1", "clusterplex-worker": "k3s-w3"}


def test_scheduler_honours_node_selector_and_taints(three_worker):
    c = three_worker
    ns = "sched-probe"
    c.kubectl("create", "namespace", ns)
    try:
        # No constraint: six replicas spread over w1 and w2, never the GPU-tainted w3.
        _deploy(c, "free", ns, 6, {})
        # GPU selector without toleration: nowhere to go.
        _deploy(c, "gpu-no-tol", ns, 1, {"nodeSelector": {"gpu": "true"}})
        # GPU selector with toleration: only w3.
        _deploy(c, "gpu-tol", ns, 2, {"nodeSelector": {"gpu": "true"}, "tolerations": [
            {"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]})

        def settled():
            free = _pods(c, ns, "app=free")
            tol = _pods(c, ns, "app=gpu-tol")
            no = _pods(c, ns, "app=gpu-no-tol")
            return (len(free) == 6 and all(p["spec"].get("nodeName") for p in free)
                    and len(tol) == 2 and all(p["spec"].get("nodeName") for p in tol)
                    and len(no) == 1 and any(
                        cond.get("reason") == "Unschedulable"
                        for cond in no[0]["status"].get("conditions", [])))

        c.wait("probe pods scheduled", settled, 90)
        assert {p["spec"]["nodeName"] for p in _pods(c, ns, "app=free")} == {"k3s-w1", "k3s-w2"}
        assert {p["spec"]["nodeName"] for p in _pods(c, ns, "app=gpu-tol")} == {"k3s-w3"}
        pending = _pods(c, ns, "app=gpu-no-tol")[0]
        assert not pending["spec"].get("nodeName")
        msg = [cond["message"] for cond in pending["status"]["conditions"]
               if cond["type"] == "PodScheduled"][0]
        assert "untolerated taint" in msg and "didn't match Pod's node affinity/selector" in msg
    finally:
        c.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=120s")


def test_node_down_evicts_after_toleration_and_reschedules(three_worker):
    c = three_worker
    ns = "failover-probe"
    toleration_s = 15
    c.kubectl("create", "namespace", ns)
    try:
        _deploy(c, "probe", ns, 1, {
            "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                    "matchExpressions": [{"key": "role", "operator": "In",
                                          "values": ["primary", "backup"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100, "preference": {"matchExpressions": [
                        {"key": "role", "operator": "In", "values": ["primary"]}]}}]}},
            "tolerations": [
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": toleration_s},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": toleration_s}]})

        def running_on(node):
            return [p for p in _pods(c, ns, "app=probe")
                    if p["spec"].get("nodeName") == node and p["status"].get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")]

        c.wait("probe Running on k3s-w1", lambda: running_on("k3s-w1"), 60)
        first = running_on("k3s-w1")[0]["metadata"]["name"]

        t_down = time.monotonic()
        c.node_down("k3s-w1")
        marks, server = {}, {}

        def progress():
            node = c.get_json("node", "k3s-w1")
            for t in node["spec"].get("taints", []):
                if t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute":
                    server.setdefault("tainted", _ts(t["timeAdded"]))
                    marks.setdefault("unreachable", time.monotonic() - t_down)
            pods = {p["metadata"]["name"]: p for p in _pods(c, ns, "app=probe")}
            old = pods.get(first)
            if old is not None and old["metadata"].get("deletionTimestamp"):
                meta = old["metadata"]
                # the eviction set deletionTimestamp = now + the pod's grace period
                server.setdefault("evicted", _ts(meta["deletionTimestamp"])
                                  - meta.get("deletionGracePeriodSeconds", 0))
            if "evicted" in server:
                marks.setdefault("evicted", time.monotonic() - t_down)
                if running_on("k3s-w2"):
                    marks["running_w2"] = time.monotonic() - t_down
                    return True
            return False

        c.wait("probe evicted from k3s-w1 and Running on k3s-w2", progress,
               c.grace + toleration_s + 60, interval=0.5)
        print(f"\nfailover timings (s since node down): {marks}")
        # The real node-lifecycle controller marked the node unreachable ...
        assert "tainted" in server
        # ... the taint-eviction controller let the pod stay for its tolerationSeconds
        # (server timestamps, 1 s resolution), not for the API server's default 300 s ...
        assert toleration_s - 1 <= server["evicted"] - server["tainted"] <= toleration_s + 5
        assert marks["evicted"] <= c.grace + toleration_s + 15
        # ... and the scheduler put the replacement where its constraints allow: k3s-w2.
        assert running_on("k3s-w2")
        assert not running_on("k3s-w3")
    finally:
        c.node_up("k3s-w1")
        c.wait("k3s-w1 Ready again", lambda: c.node_ready("k3s-w1"), 60)
        c.wait("k3s-w1 untainted", lambda: not any(
            t["key"].startswith("node.kubernetes.io/") for t in
            c.get_json("node", "k3s-w1")["spec"].get("taints", [])), 60)
        c.kubectl("delete", "namespace", ns, "--wait=true", "--timeout=120s")


def test_the_harness_reads_what_kubectl_prints(cluster):
    """LocalCluster.kubectl answers a plain ``get ... -o json`` with one GET of its own:
    its output is kubectl's (a List whose items name their kind, no managedFields; the
    same error for a missing object), and anything else still runs kubectl."""
    queries = [("namespaces",), ("clusterrole", "admin"), ("crd",), ("priorityclasses",),
               ("storageclasses.storage.k8s.io",), ("node", "no-such-node"),
               ("pods", "-n", "kube-system", "--field-selector=spec.nodeName=no-such-node")]
    for query in queries:
        fast = cluster.kubectl("get", *query, "-o", "json", check=False)
        real = subprocess.run(["kubectl", f"--kubeconfig={cluster.kubeconfig}", "get", *query, "-o", "json"],
                              capture_output=True, text=True, check=False)
        assert fast.args[0] == "kubectl" and len(fast.args) == len(query) + 4, "%s ran kubectl" % (query,)
        assert fast.returncode == real.returncode, query
        if real.returncode:
            assert fast.stderr == real.stderr, query
        else:
            assert json.loads(fast.stdout) == json.loads(real.stdout), query
    listed = cluster.get_json("namespaces")
    assert listed["kind"] == "List" and {i["kind"] for i in listed["items"]} == {"Namespace"}
    assert all("managedFields" not in i["metadata"] for i in listed["items"])
    # not a plain get: kubectl itself (its argv carries the kubeconfig)
    named = cluster.kubectl("get", "namespaces", "-o", "name")
    assert named.args[1] == f"--kubeconfig={cluster.kubeconfig}" and "namespace/default" in named.stdout.split()
