"""app_gates_info (runbook 002 section 3.1) on the two-node fixture after runbook 000, with
the Longhorn simulator: a well-prepared app passes; the fixture's apps without budgets,
requests or probes are refused with the reasons; the data-model class decides which
strategies are allowed."""

import json

import pytest

from observe import LANE_TAINT, audit_size, clear_lanes, set_lanes, writes

PLAYBOOK = "tests/integration/playbooks/modules.yml"
PROBE = {"httpGet": {"path": "/", "port": 8080}}


def app(name, image, replicas=1, requests=True, probes=True, claim=None):
    container = {"name": "main", "image": image}
    if requests:
        container["resources"] = {"requests": {"cpu": "10m", "memory": "32Mi"}}
    if probes:
        container.update(readinessProbe=PROBE, livenessProbe=PROBE)
    spec = {"containers": [container], "nodeSelector": {"workload-lane": "primary"}}
    if claim:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "gates"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def pdb(name, **budget):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "gates"}},
            "spec": dict(budget, selector={"matchLabels": {"app": name}})}


@pytest.fixture
def lanes(longhorn):
    c = longhorn.cluster
    set_lanes(c, uncordon=True)
    objects = [app("web", "registry.example/web:1", replicas=2), pdb("web", maxUnavailable=1),
               app("notes-db", "registry.example/postgres:16", claim="arr-config"), pdb("notes-db", maxUnavailable=0),
               app("files", "registry.example/files:1", claim="homarr-data"), pdb("files", maxUnavailable=0)]
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    c.kubectl("rollout", "status", "-n", "apps", "deployment/web", "--timeout=60s")
    yield longhorn
    c.kubectl("delete", "deployments,pdb", "-n", "apps", "-l", "homelab.k8s-ha/fixture=gates", "--wait=true")
    clear_lanes(c)


def gates(c, run_playbook, name, **args):
    args = dict({"namespace": "apps", "name": name, "secondary_node": "worker-1", "lane_taint": LANE_TAINT}, **args)
    run = run_playbook(c, PLAYBOOK, extra_vars={"gates_args": args})
    assert run.rc == 0, run.stdout[-3000:]
    return run.result, dict((g["name"], g) for g in run.result["gates"])


def test_a_prepared_stateless_app_passes_every_gate(lanes, run_playbook):
    c = lanes.cluster
    offset = audit_size(c)
    result, by = gates(c, run_playbook, "web", strategy="active_active")
    assert result["classification"] == {"class": "stateless", "reason": "mounts no PersistentVolumeClaim"}
    assert result["passed"] is True and result["strategy_refusal"] is None, result["report"]
    assert by["PodDisruptionBudget present and appropriate"]["evidence"] == (
        "web (maxUnavailable 1, minAvailable None) allows 1 of 2 down")
    assert by["guardrails intact"]["evidence"] == "secondary lane tainted; nothing on it that did not opt in"
    assert writes(c, offset) == []


def test_fixture_app_without_budget_requests_probes_is_refused(lanes, run_playbook):
    result, by = gates(lanes.cluster, run_playbook, "homarr", strategy="active_active")
    assert result["passed"] is False
    failed = sorted(n for n, g in by.items() if not g["passed"])
    assert failed == ["PodDisruptionBudget present and appropriate", "probes present and green",
                      "resource requests set"]
    assert by["PodDisruptionBudget present and appropriate"]["evidence"] == "no PodDisruptionBudget selects the app's pods"
    assert by["resource requests set"]["evidence"] == "no requests: homarr (cpu, memory)"


def test_single_writer_refuses_active_active_and_needs_two_replicas_per_volume(lanes, run_playbook):
    c = lanes.cluster
    result, by = gates(c, run_playbook, "files", strategy="active_active")
    assert result["classification"] == {"class": "rwo_single_writer",
                                        "reason": "single-writer storage: homarr-data (ReadWriteOnce)"}
    assert result["strategy_refusal"].startswith("strategy active_active runs two replicas writing at once; "
                                                 "apps/files is rwo_single_writer")
    assert result["strategy_refusal"].endswith("Allowed for it: controlled_failover, hybrid")
    # the volume has one replica (runbook 001 not done for it): the Longhorn gate says so
    assert by["Longhorn volumes healthy, one replica per node"] == {
        "name": "Longhorn volumes healthy, one replica per node", "passed": False,
        "evidence": "pvc-homarr is healthy on miniserver"}
    ok, _by = gates(c, run_playbook, "files", strategy="controlled_failover")
    assert ok["strategy_refusal"] is None

    db, _by = gates(c, run_playbook, "notes-db", strategy="controlled_failover")
    assert db["classification"]["class"] == "fragile_db"
    assert db["classification"]["reason"].startswith("runs postgres, a database sensitive to restarts")


def test_a_pod_that_did_not_opt_in_breaks_the_guardrails(lanes, run_playbook):
    c = lanes.cluster
    stray = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "stray", "namespace": "apps", "labels": {"homelab.k8s-ha/fixture": "gates"}},
             "spec": {"nodeName": "worker-1", "containers": [{"name": "c", "image": "registry.example/x:1"}]}}
    c.kubectl("apply", "-f", "-", input=json.dumps(stray))
    try:
        result, by = gates(c, run_playbook, "web")
        assert result["passed"] is False
        assert by["guardrails intact"]["evidence"] == "not opted in: apps/stray"
    finally:
        c.kubectl("delete", "pod", "stray", "-n", "apps", "--wait=true")


def test_a_crash_looping_app_is_refused(lanes, run_playbook):
    """A node no kwok plays (so nothing overwrites pod status) carries the app's pod; its
    status is set as a kubelet reports a container in CrashLoopBackOff."""
    c = lanes.cluster
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "crash-node", "labels": {"homelab.k8s-ha/fixture": "gates"}}}
    crashy = app("crashy", "registry.example/crashy:1")
    crashy["spec"]["template"]["spec"]["nodeName"] = "crash-node"
    del crashy["spec"]["template"]["spec"]["nodeSelector"]
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": [node, crashy, pdb("crashy", maxUnavailable=0)]}))
    try:
        lanes.wait("the crashy pod", lambda: c.get_json("pods", "-n", "apps", "-l", "app=crashy")["items"])
        pod = c.get_json("pods", "-n", "apps", "-l", "app=crashy")["items"][0]["metadata"]["name"]
        now = c.get_json("node", "crash-node")["metadata"]["creationTimestamp"]
        status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                             "containerStatuses": [{
                                 "name": "main", "image": "registry.example/crashy:1", "imageID": "", "ready": False,
                                 "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": now, "startedAt": now}}}]}}
        c.kubectl("patch", "pod", pod, "-n", "apps", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        result, by = gates(c, run_playbook, "crashy")
        assert result["passed"] is False
        assert by["no CrashLoopBackOff"]["evidence"] == f"{pod}/main"
        assert by["restarts in the last hour at most 3"]["evidence"] == (
            f"{pod}/main restarted 7 times, the last within the hour")
        assert by["probes present and green"]["evidence"] == f"not Ready: {pod}"
    finally:
        c.kubectl("delete", "deployment,pdb", "crashy", "-n", "apps", "--wait=false")
        c.kubectl("delete", "pods", "-n", "apps", "-l", "app=crashy", "--force", "--grace-period=0", check=False)
        c.kubectl("delete", "node", "crash-node", "--wait=true")
