"""The shared module base against the real API server: a real 409 makes update()
re-read and retry, and check mode sends the write as a server-side dry run only."""

import json

from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    K8sHaModule,
    argument_spec,
)
from observe import audit_entries, audit_size

LABEL = "homelab.k8s-ha/probe"


def make_module(cluster, check_mode=False):
    args = {"kubeconfig": str(cluster.kubeconfig), "_ansible_check_mode": check_mode,
            "_ansible_diff": True}
    with patch_module_args(args):
        return K8sHaModule(argument_spec())


def labels(cluster, node):
    return cluster.get_json("node", node)["metadata"].get("labels", {})


def test_update_retries_after_a_real_conflict(two_node):
    c = two_node
    module = make_module(c)
    calls = []

    def mutate(node):
        calls.append(node["metadata"]["resourceVersion"])
        if len(calls) == 1:
            # Someone else writes between our read and our write: a real 409 follows.
            c.kubectl("label", "node", "worker-1", "other-writer=yes", "--overwrite")
        node["metadata"]["labels"][LABEL] = "set"
        return node

    try:
        before, after = module.update("Node", "v1", "worker-1", mutate, backoff=0)
        assert len(calls) == 2 and calls[0] != calls[1]  # read again after the 409
        assert LABEL not in before["metadata"]["labels"]
        now = labels(c, "worker-1")
        # our change landed and the other writer's change survived
        assert now[LABEL] == "set" and now["other-writer"] == "yes"
        assert after["metadata"]["labels"] == now
    finally:
        c.kubectl("label", "node", "worker-1", f"{LABEL}-", "other-writer-")


def test_check_mode_is_a_server_side_dry_run(two_node):
    c = two_node
    module = make_module(c, check_mode=True)
    offset = audit_size(c)

    def mutate(node):
        node["metadata"]["labels"][LABEL] = "dry"
        return node

    before, after = module.update("Node", "v1", "miniserver", mutate)
    assert after["metadata"]["labels"][LABEL] == "dry"  # what the server would store
    assert LABEL not in labels(c, "miniserver")  # and did not
    c.wait("the patch in the audit log", lambda: any(
        e["verb"] == "patch" for e in audit_entries(c, offset)), 30)
    patches = [e for e in audit_entries(c, offset) if e["verb"] == "patch"
               and e["objectRef"].get("name") == "miniserver"]
    assert patches and all("dryRun=All" in e["requestURI"] for e in patches)
    assert before["metadata"]["resourceVersion"] == \
        c.get_json("node", "miniserver")["metadata"]["resourceVersion"]


def test_get_returns_none_for_missing_and_list_is_one_request(two_node):
    c = two_node
    module = make_module(c)
    assert module.get("Node", "v1", "no-such-node") is None
    offset = audit_size(c)
    pods = module.list("Pod")
    assert {p["metadata"]["namespace"] for p in pods} >= {"apps", "kube-system"}
    c.wait("the list in the audit log", lambda: any(
        e["verb"] == "list" for e in audit_entries(c, offset)), 30)
    lists = [e for e in audit_entries(c, offset)
             if e["verb"] == "list" and e["objectRef"].get("resource") == "pods"
             and "python" in e.get("userAgent", "").lower()]
    assert len(lists) == 1, json.dumps(lists, indent=1)
