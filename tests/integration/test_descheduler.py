"""The real descheduler binary (one pass) fails a pod back to its preferred node."""

import json
import subprocess

import yaml

NS = "failback-probe"
POLICY = {
    "apiVersion": "descheduler/v1alpha2",
    "kind": "DeschedulerPolicy",
    "profiles": [{
        "name": "failback",
        "pluginConfig": [
            {"name": "DefaultEvictor", "args": {}},
            {"name": "RemovePodsViolatingNodeAffinity", "args": {
                "nodeAffinityType": ["preferredDuringSchedulingIgnoredDuringExecution"],
                "namespaces": {"include": [NS]}}}],
        "plugins": {"deschedule": {"enabled": ["RemovePodsViolatingNodeAffinity"]}},
    }],
}


def test_descheduler_moves_pod_back_to_preferred_node(three_worker, tmp_path):
    c = three_worker
    c.kubectl("create", "namespace", NS)
    c.kubectl("cordon", "k3s-w1")
    try:
        deploy = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "probe", "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "probe"}},
                     "template": {"metadata": {"labels": {"app": "probe"}}, "spec": {
                         "containers": [{"name": "c", "image": "probe"}],
                         "affinity": {"nodeAffinity": {
                             "requiredDuringSchedulingIgnoredDuringExecution": {
                                 "nodeSelectorTerms": [{"matchExpressions": [
                                     {"key": "role", "operator": "In",
                                      "values": ["primary", "backup"]}]}]},
                             "preferredDuringSchedulingIgnoredDuringExecution": [{
                                 "weight": 100, "preference": {"matchExpressions": [
                                     {"key": "role", "operator": "In",
                                      "values": ["primary"]}]}}]}}}}}}
        c.kubectl("apply", "-f", "-", input=json.dumps(deploy))

        def running():
            return [(p["metadata"]["name"], p["spec"].get("nodeName"))
                    for p in c.get_json("pods", "-n", NS)["items"]
                    if p["status"].get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")]

        # With the preferred node cordoned, the scheduler falls back to k3s-w2.
        c.wait("probe Running on k3s-w2", lambda: [node for _pod, node in running()] == ["k3s-w2"], 60)
        (old_pod, _node), = running()
        c.kubectl("uncordon", "k3s-w1")

        policy = tmp_path / "policy.yaml"
        policy.write_text(yaml.safe_dump(POLICY))
        run = subprocess.run(
            [c.binary("descheduler"), f"--kubeconfig={c.dir / 'descheduler.kubeconfig'}",
             f"--policy-config-file={policy}", "--secure-port=0", "--v=3"],
            capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Evicted pod" in run.stderr and old_pod in run.stderr

        c.wait("probe back on k3s-w1", lambda: [node for _pod, node in running()] == ["k3s-w1"], 60)
        assert old_pod not in [name for name, _node in running()]
    finally:
        c.kubectl("uncordon", "k3s-w1")
        c.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s")
