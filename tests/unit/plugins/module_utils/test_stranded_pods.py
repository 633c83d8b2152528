"""fields.stranded_pods: the new pods kube-scheduler 1.34 would leave Pending for its
5-minute flush although the pod anti-affinity that rejected them is gone."""

from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import stranded_pods

DEPLOY = {"metadata": {"name": "web", "uid": "d1", "annotations": {"deployment.kubernetes.io/revision": "4"}}}
NEW = {"metadata": {"name": "web-new", "uid": "rs-new", "annotations": {"deployment.kubernetes.io/revision": "4"},
                    "ownerReferences": [{"uid": "d1"}]}}
OLD = {"metadata": {"name": "web-old", "uid": "rs-old", "annotations": {"deployment.kubernetes.io/revision": "3"},
                    "ownerReferences": [{"uid": "d1"}]}}
ANTI = ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) didn't match pod anti-affinity rules.")


def pod(name, rs, node=None, reason="Unschedulable", message=ANTI, deleting=False):
    p = {"metadata": {"name": name, "ownerReferences": [{"uid": rs}]}, "spec": {},
         "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": reason, "message": message}]}}
    if node:
        p["spec"]["nodeName"] = node
        p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-12-05T00:00:00Z"
    return p


def names(pods):
    return [p["metadata"]["name"] for p in pods]


def test_a_new_pod_rejected_by_anti_affinity_once_the_old_pods_are_gone():
    pods = [pod("web-new-a", "rs-new", node="miniserver"), pod("web-new-b", "rs-new")]
    assert names(stranded_pods(DEPLOY, [NEW, OLD], pods, waited=12)) == ["web-new-b"]


def test_not_while_an_old_pod_is_left_terminating_or_not():
    for old in (pod("web-old-x", "rs-old", node="miniserver"),
                pod("web-old-x", "rs-old", node="miniserver", deleting=True)):
        assert stranded_pods(DEPLOY, [NEW, OLD], [pod("web-new-b", "rs-new"), old], waited=60) == []


def test_not_before_the_scheduler_had_its_own_retries():
    assert stranded_pods(DEPLOY, [NEW, OLD], [pod("web-new-b", "rs-new")], waited=5) == []


def test_only_anti_affinity_rejections_of_the_current_replicaset():
    pods = [pod("web-new-b", "rs-new", message="0/2 nodes are available: 2 Insufficient cpu."),
            pod("web-new-c", "rs-new", reason="SchedulingGated"),
            pod("web-new-d", "rs-new", deleting=True),
            pod("other-x", "rs-other")]
    assert stranded_pods(DEPLOY, [NEW, OLD], pods, waited=60) == []
    # a Deployment whose revision no ReplicaSet carries yet: nothing is its current one
    assert stranded_pods(dict(DEPLOY, metadata=dict(DEPLOY["metadata"], annotations={
        "deployment.kubernetes.io/revision": "5"})), [NEW, OLD], [pod("web-new-b", "rs-new")], waited=60) == []
