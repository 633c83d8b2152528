"""The placement audit's "guarded" verdict, cross-checked against the real kube-scheduler on a
generated matrix of pinning forms and workload kinds.

A workload is guarded against the secondary node only when its own spec keeps it off that
node, whatever field does it. The matrix is generated from building blocks: every nodeSelector
and node-affinity operator (In, NotIn, Exists, DoesNotExist, Gt, Lt) on labels both nodes carry,
labels only one carries and a label neither carries, matchFields on the node name, nodeName,
terms ORed and expressions ANDed, nodeSelector together with affinity; and every workload kind
with a pod template (Deployment, StatefulSet, ReplicaSet, ReplicationController, Job, CronJob)
and a bare Pod. The real scheduler then decides: with the primary node cordoned and the
secondary schedulable and untainted, a workload's pod lands on the secondary exactly when
nothing in its spec keeps it off. Each verdict of placement_audit_info must agree."""

import itertools
import json

import pytest

AUDIT_PLAYBOOK = "tests/integration/playbooks/placement_audit.yml"
NS = "guard-matrix"
P, S = "miniserver", "worker-1"
HOST = "kubernetes.io/hostname"
OS = "kubernetes.io/os"
RANK = "homelab.k8s-ha/matrix-rank"  # set by the test: 1 on the primary, 2 on the secondary
ABSENT = "homelab.k8s-ha/matrix-absent"  # on no node
CASE = "homelab.k8s-ha/matrix-case"


def expressions():
    """One NodeSelectorRequirement of every operator on every kind of label."""
    values = {HOST: [[P], [S], [P, S]], RANK: [["1"], ["2"], ["1", "2"]], ABSENT: [["x"]], OS: [["linux"]]}
    for key, sets in values.items():
        for op, vals in itertools.product(("In", "NotIn"), sets):
            yield {"key": key, "operator": op, "values": vals}
        for op in ("Exists", "DoesNotExist"):
            yield {"key": key, "operator": op}
    for op, v in itertools.product(("Gt", "Lt"), ("0", "1", "2")):
        yield {"key": RANK, "operator": op, "values": [v]}


def fields():
    """matchFields on the node's name (the API allows one value, In or NotIn)."""
    for op, name in itertools.product(("In", "NotIn"), (P, S)):
        yield {"key": "metadata.name", "operator": op, "values": [name]}


def affinity(*terms):
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


def forms():
    """(label, pod-spec placement fields), generated."""
    yield "none", {}
    for node in (P, S):
        yield "nodeName=" + node, {"nodeName": node}
    for key, value in ((HOST, P), (HOST, S), (OS, "linux"), (RANK, "2"), (ABSENT, "x")):
        yield "nodeSelector %s=%s" % (key, value), {"nodeSelector": {key: value}}
    for e in expressions():
        yield "affinity %s" % json.dumps(e, sort_keys=True), affinity({"matchExpressions": [e]})
    for f in fields():
        yield "affinity fields %s" % json.dumps(f, sort_keys=True), affinity({"matchFields": [f]})
    blocks = [{"matchExpressions": [{"key": HOST, "operator": "In", "values": [P]}]},
              {"matchExpressions": [{"key": RANK, "operator": "Gt", "values": ["1"]}]},
              {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": [P]}]},
              {"matchExpressions": [{"key": ABSENT, "operator": "DoesNotExist"}]}]
    for a, b in itertools.combinations(range(len(blocks)), 2):
        yield "affinity term %d OR term %d" % (a, b), affinity(blocks[a], blocks[b])
        merged = {}
        for block in (blocks[a], blocks[b]):
            for k, v in block.items():
                merged.setdefault(k, []).extend(v)
        yield "affinity term %d AND term %d" % (a, b), affinity(merged)
    yield "nodeSelector os + affinity NotIn secondary", dict(
        {"nodeSelector": {OS: "linux"}}, **affinity({"matchExpressions": [{"key": HOST, "operator": "NotIn", "values": [S]}]}))
    yield "nodeSelector primary + affinity In secondary", dict(
        {"nodeSelector": {HOST: P}}, **affinity({"matchExpressions": [{"key": HOST, "operator": "In", "values": [S]}]}))


def workload(kind, name, placement):
    labels = {CASE: name}
    pod_spec = dict({"containers": [{"name": "c", "image": "registry.example/matrix:1"}],
                     "terminationGracePeriodSeconds": 0}, **placement)
    meta = {"name": name, "namespace": NS, "labels": labels}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    if kind in ("Job", "CronJob"):
        template["spec"] = dict(pod_spec, restartPolicy="Never")
        job = {"backoffLimit": 0, "template": template}
        if kind == "Job":
            return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job}
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": job}}}
    if kind == "ReplicationController":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta,
                "spec": {"replicas": 1, "selector": labels, "template": template}}
    spec = {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Pod")


def cases():
    """Every form as a Deployment; every kind with three forms (unpinned, pinned and guarded,
    pinned and not guarded), as each kind keeps its pod template in another place."""
    out = []
    for i, (label, placement) in enumerate(forms()):
        out.append(("Deployment", "form-%02d" % i, label, placement))
    for kind in KINDS[1:]:
        for j, label in enumerate(("none", "nodeSelector %s=%s" % (HOST, P), "nodeSelector %s=linux" % OS)):
            placement = dict(forms())[label]
            out.append((kind, "%s-%d" % (kind.lower(), j), label, placement))
    return out


@pytest.fixture
def matrix(two_node):
    """The primary cordoned, the secondary schedulable and untainted, the rank labels set."""
    c = two_node
    c.kubectl("label", "node", P, RANK + "=1")
    c.kubectl("label", "node", S, RANK + "=2")
    c.kubectl("cordon", P)
    c.kubectl("uncordon", S)
    c.kubectl("create", "namespace", NS)
    try:
        yield c
    finally:
        c.kubectl("delete", "namespace", NS, "--wait=true", "--timeout=120s")
        c.kubectl("label", "node", P, S, RANK + "-")
        c.kubectl("cordon", S)
        c.kubectl("uncordon", P)


def decided(c, names):
    """Every case's pod bound to a node, or found unschedulable by the scheduler."""
    pods = [p for p in c.get_json("pods", "-n", NS)["items"] if not p["metadata"].get("deletionTimestamp")]
    seen = {}
    for p in pods:
        case = p["metadata"]["labels"].get(CASE)
        unschedulable = any(cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable"
                            for cond in p.get("status", {}).get("conditions", []))
        if p["spec"].get("nodeName") or unschedulable:
            seen.setdefault(case, set()).add(p["spec"].get("nodeName"))
    return seen if all(n in seen for n in names) else None


def test_every_guard_verdict_agrees_with_the_real_scheduler(matrix, run_playbook):
    c = matrix
    all_cases = cases()
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        workload(kind, name, placement) for kind, name, _label, placement in all_cases]}))
    for kind, name, _label, _placement in all_cases:
        if kind == "CronJob":  # its pods exist once a Job runs; as a person starts one now
            c.kubectl("create", "job", "-n", NS, "--from=cronjob/" + name, name + "-now")
    names = [name for _kind, name, _label, _placement in all_cases]
    found = {}
    c.wait("every case's pod bound or unschedulable",
           lambda: found.update(decided(c, names) or {}) or len(found) == len(names), 120)

    run = run_playbook(c, AUDIT_PLAYBOOK, extra_vars={"audit_node": S})
    assert run.rc == 0, run.stdout[-3000:]
    verdicts = dict(((w["kind"], w["name"]), w) for w in run.result["workloads"] if w["namespace"] == NS)
    unguarded = set((w["kind"], w["name"]) for w in run.result["unguarded"] if w["namespace"] == NS)
    disagree = []
    for kind, name, label, _placement in all_cases:
        w = verdicts.get((kind, name))
        assert w is not None, "%s %s (%s) is not in the audit" % (kind, name, label)
        on_secondary = S in found[name]
        if w["guarded"] == on_secondary or (((kind, name) in unguarded) != on_secondary):
            disagree.append("%s %s (%s): audit guarded=%s, the scheduler put it on %s"
                            % (kind, name, label, w["guarded"], ", ".join(sorted(n or "no node" for n in found[name]))))
    assert disagree == [], "\n".join(disagree)
    # the matrix has both outcomes, and pinned workloads that do not guard (the forms a
    # field-based verdict called guarded)
    pinned_unguarded = [w for k, w in verdicts.items() if k in unguarded and w["pinning"] != "none"]
    print("guard matrix: %d cases, %d guarded, %d unguarded (%d of them pinned)" % (
        len(all_cases), len(all_cases) - len(unguarded), len(unguarded), len(pinned_unguarded)))
    assert len(unguarded) >= 10 and len(all_cases) - len(unguarded) >= 10
    assert len(pinned_unguarded) >= 10
    assert set(kind for kind, _name in unguarded) == set(KINDS)
