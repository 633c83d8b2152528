"""workload_fields' rollout wait does not sit out kube-scheduler's 5-minute flush.

kube-scheduler 1.34 does not retry a pod that an existing pod's required anti-affinity
rejected when that pod is deleted (InterPodAffinity's queueing hint looks at the rejected
pod's own anti-affinity only), so the pod waits up to podMaxInUnschedulablePodsDuration
(5 minutes). Runbook 002's stage 2 rollback meets this. Here a blocker pod's anti-affinity
rejects the Deployment's new pod, the blocker goes, and the module (as the app-migration
family's ServiceAccount) deletes the stranded pod so its ReplicaSet makes one the scheduler
places at once: the rollout is done within a wait_timeout far below the 5 minutes."""

import json
import threading

import pytest

PLAYBOOK = "tests/integration/playbooks/modules.yml"
LABEL = {"homelab.k8s-ha/fixture": "stranded"}
DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "stranded", "namespace": "apps", "labels": LABEL},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "stranded"}},
             "template": {"metadata": {"labels": {"app": "stranded"}}, "spec": {
                 "nodeSelector": {"kubernetes.io/hostname": "miniserver"},
                 "containers": [{"name": "app", "image": "registry.example/app:1",
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}
BLOCKER = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "blocker", "namespace": "apps",
                                                    "labels": dict(LABEL, app="blocker")},
    "spec": {"nodeName": "miniserver", "terminationGracePeriodSeconds": 0,
             "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                 "labelSelector": {"matchLabels": {"app": "stranded"}}, "topologyKey": "kubernetes.io/hostname"}]}},
             "containers": [{"name": "app", "image": "registry.example/app:1"}]}}


@pytest.fixture
def playbook_identity(identity):
    return identity("app-migration")


def rejected(c):
    """The Deployment's pods the scheduler rejected for pod anti-affinity."""
    return [p["metadata"]["name"] for p in c.get_json("pods", "-n", "apps", "-l", "app=stranded")["items"]
            if any(x["type"] == "PodScheduled" and x["status"] == "False" and "anti-affinity" in x.get("message", "")
                   for x in p["status"].get("conditions", []))]


def test_a_pod_stranded_by_a_gone_anti_affinity_is_replaced_not_waited_for(two_node, run_playbook):
    c = two_node
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [BLOCKER, DEPLOYMENT]}))
    try:
        def blocker_running():
            pods = c.get_json("pods", "-n", "apps", "--field-selector", "metadata.name=blocker")["items"]
            return bool(pods) and pods[0]["status"].get("phase") == "Running"
        c.wait("the blocker Running", blocker_running, 60)
        seen = []

        def remove_the_blocker_once_it_rejected_the_pod():
            c.wait("a pod rejected by the blocker's anti-affinity", lambda: rejected(c), timeout=60)
            seen.extend(rejected(c))
            c.kubectl("delete", "pod", "blocker", "-n", "apps", "--wait=true")
        remover = threading.Thread(target=remove_the_blocker_once_it_rejected_the_pod)
        remover.start()
        run = run_playbook(c, PLAYBOOK, extra_vars={"fields_args": {
            "namespace": "apps", "name": "stranded", "fields": {"spec.replicas": 1}, "wait_timeout": 120}})
        remover.join()
        assert run.rc == 0, run.stdout[-3000:]
        assert seen, "the scheduler never rejected the pod: the scenario did not happen"
        messages = [e["message"] for e in run.result["events"]]
        kicked = [m for m in messages if m.startswith("deleted ")]
        assert kicked and kicked[0].startswith("deleted %s (never started): Unschedulable by a pod anti-affinity"
                                               " that is gone" % seen[0]), messages
        pods = c.get_json("pods", "-n", "apps", "-l", "app=stranded")["items"]
        assert [(p["spec"].get("nodeName"), p["status"].get("phase")) for p in pods] == [("miniserver", "Running")]
        assert pods[0]["metadata"]["name"] != seen[0]
    finally:
        c.kubectl("delete", "deployment,pod", "-n", "apps", "-l", "homelab.k8s-ha/fixture=stranded",
                  "--ignore-not-found", "--wait=true")
