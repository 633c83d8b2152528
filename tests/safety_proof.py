"""The safety proof of a mutating playbook, as pure functions over what the tests read.

A scenario of the matrix (tests/integration/proof.py runs it) is: check (0 writes) ->
apply -> no surprise pod -> the same apply again (0 writes) -> rollback check (0 writes)
-> rollback -> every object the apply or the rollback wrote equal to its snapshot from
before the apply, and every file the apply wrote in the GitOps checkout back as it was.
This module compares; it reads nothing itself, so tests/unit/test_safety_proof.py shows
it failing on a rollback that leaves one field changed."""

import copy
import json

# What the API server or a controller changes on every write: not part of what a
# rollback restores (the list: status, resourceVersion, managedFields,
# generation, timestamps, the revision annotation).
IGNORED_METADATA = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid", "selfLink")
# The DaemonSet controller's counterpart of a Deployment's revision annotation: it counts
# template changes (pkg/controller/daemon, the "deprecated" generation kept for old clients).
IGNORED_ANNOTATIONS = ("deployment.kubernetes.io/revision", "deprecated.daemonset.template.generation")
# A pod template's restartedAt annotation is a write of its own and is compared.
# Taint keys the node lifecycle controller and `kubectl cordon` own (transient, not a lane).
SYSTEM_TAINT_PREFIX = "node.kubernetes.io/"


def normal(obj):
    """The object as a rollback must restore it: spec, data, labels, annotations (no status,
    no server bookkeeping, no taint timeAdded)."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for k in IGNORED_METADATA:
        meta.pop(k, None)
    annotations = meta.get("annotations") or {}
    for k in IGNORED_ANNOTATIONS:
        annotations.pop(k, None)
    if "annotations" in meta and not annotations:
        meta.pop("annotations")
    for taint in (out.get("spec") or {}).get("taints") or []:
        taint.pop("timeAdded", None)
    return out


def field_diffs(before, after, path=""):
    """[(path, before, after)] for every leaf that differs; a missing key is None."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in sorted(set(before) | set(after)):
            out += field_diffs(before.get(k), after.get(k), "%s.%s" % (path, k) if path else k)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after)):
            out += field_diffs(b, a, "%s[%d]" % (path, i))
        return out
    return [] if before == after else [(path, before, after)]


def not_restored(before, after, written):
    """What a rollback left different: one line per field of every ``written`` object
    (its key) whose normalised state ``after`` differs from ``before`` (objects by key;
    absent from both is restored, created and not deleted is not)."""
    out = []
    for k in sorted(written):
        b, a = before.get(k), after.get(k)
        if b is None and a is None:
            continue
        if b is None or a is None:
            out.append("%s: %s" % (k, "left behind (created by the run)" if b is None else "gone (deleted by the run)"))
            continue
        for path, was, now in field_diffs(normal(b), normal(a)):
            out.append("%s: %s was %s, is %s" % (k, path, _short(was), _short(now)))
    return out


def files_not_restored(before, after):
    """Paths (of a GitOps checkout, path -> content) that differ after the rollback."""
    return ["%s: %s" % (p, "left behind" if p not in before else "gone" if p not in after else "content differs")
            for p in sorted(set(before) | set(after)) if before.get(p) != after.get(p)]


def tolerates(tolerations, taint):
    """Whether a pod's tolerations tolerate ``taint``: k8s.io/api/core/v1
    Toleration.ToleratesTaint (an empty key with Exists matches every key; an empty
    effect every effect; Exists ignores the value; Equal, the default, compares it)."""
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("key") and t["key"] != taint.get("key"):
            continue
        if not t.get("key") and t.get("operator") != "Exists":
            continue
        if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def off_limits(pods, nodes):
    """``ns/pod on node: key=value:effect`` for every live pod on a node whose NoSchedule or
    NoExecute taint (not a node.kubernetes.io/ one) it does not tolerate: a pod there that
    did not opt in."""
    taints = dict((n["metadata"]["name"], [t for t in (n.get("spec") or {}).get("taints") or []
                                           if t.get("effect") in ("NoSchedule", "NoExecute")
                                           and not t["key"].startswith(SYSTEM_TAINT_PREFIX)])
                  for n in nodes)
    out = []
    for p in pods:
        node = (p.get("spec") or {}).get("nodeName")
        if not node or p["metadata"].get("deletionTimestamp") or (p.get("status") or {}).get("phase") in (
                "Succeeded", "Failed"):
            continue
        for t in taints.get(node, []):
            if not tolerates(p["spec"].get("tolerations"), t):
                out.append("%s/%s on %s: %s=%s:%s" % (p["metadata"]["namespace"], p["metadata"]["name"], node,
                                                      t["key"], t.get("value", ""), t["effect"]))
    return out


def pod_names(pods):
    """``ns/pod`` of every pod, to tell the pods a run placed from those it found."""
    return set("%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods)


def surprise_pods(before, after):
    """The pods a run placed off limits: entries of ``off_limits`` after the run whose pod
    (``ns/pod``) was not among ``before`` (``pod_names`` before it). A pod that was there
    already and is off limits only because the run tainted its node (a DaemonSet's, for
    one) is not placed by the run; whether it should stay is not this check's question."""
    return sorted(entry for entry in after if entry.split(" on ", 1)[0] not in before)


def _short(value, width=80):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[:width - 3] + "..."


class Row(object):
    """One scenario of the matrix: the numbers a person reads in docs/testing.md."""

    COLUMNS = ("scenario", "check writes", "2nd-apply writes", "rollback check writes",
               "rollback diff", "surprise pods", "note")

    def __init__(self, scenario, exception=""):
        self.scenario = scenario
        self.exception = exception  # a documented exception (drill, failback): why a step does not apply
        self.check_writes = None
        self.again_writes = None
        self.rollback_check_writes = None
        self.rollback_diff = None
        self.surprise = None

    def failures(self):
        """What makes the row red: any non-zero count among the steps that ran."""
        out = []
        for name, value in (("check writes", self.check_writes), ("2nd-apply writes", self.again_writes),
                            ("rollback check writes", self.rollback_check_writes)):
            if value:
                out.append("%s: %d (%s)" % (name, len(value), "; ".join(value[:5])))
        if self.rollback_diff:
            out.append("rollback diff: %s" % "; ".join(self.rollback_diff[:10]))
        if self.surprise:
            out.append("surprise pods: %s" % "; ".join(self.surprise[:10]))
        return out

    def cells(self):
        def n(value):
            return "n/a" if value is None else str(len(value))
        return [self.scenario, n(self.check_writes), n(self.again_writes), n(self.rollback_check_writes),
                n(self.rollback_diff), n(self.surprise), self.exception]


def table(rows):
    """The matrix as a Markdown table, in the order the scenarios ran."""
    lines = ["| %s |" % " | ".join(Row.COLUMNS), "|%s" % ("---|" * len(Row.COLUMNS))]
    lines += ["| %s |" % " | ".join(r.cells()) for r in rows]
    return "\n".join(lines)
