"""What tests observe of the local cluster: its audit log, its nodes' lane state, and
the evidence folders the playbooks write."""

import json
import os

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def audit_entries(cluster, since=0):
    """Audit events written after byte offset ``since`` of the audit log."""
    with open(cluster.audit_log, "rb") as f:
        f.seek(since)
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


def audit_size(cluster):
    return os.path.getsize(cluster.audit_log)


def writes(cluster, since, resource=None):
    """Writes our code sent after ``since`` (cluster-admin, not kubectl, not a dry run),
    optionally only to ``resource`` itself (no subresource)."""
    return [e for e in audit_entries(cluster, since)
            if e["verb"] in WRITE_VERBS
            and "dryRun=All" not in e["requestURI"]
            and e["user"]["username"] == "homelab-admin"
            and "kubectl" not in e.get("userAgent", "")
            and (resource is None or (e["objectRef"].get("resource") == resource
                                      and e["objectRef"].get("subresource") is None))]


def lane_snapshot(cluster):
    """Every node's labels, taints (without timeAdded) and unschedulable."""
    out = {}
    for n in cluster.get_json("nodes")["items"]:
        out[n["metadata"]["name"]] = {
            "labels": n["metadata"].get("labels", {}),
            "taints": [{k: t[k] for k in ("key", "value", "effect") if k in t}
                       for t in n["spec"].get("taints", [])],
            "unschedulable": bool(n["spec"].get("unschedulable"))}
    return out


def newest_evidence(evidence, playbook):
    """The newest evidence folder of ``playbook`` under ``evidence``."""
    return sorted(p for p in evidence.iterdir() if p.name.endswith("-" + playbook))[-1]


def _lane_model():
    """The lane model as the guardrails role defines it: its defaults, read, not copied."""
    import yaml
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "roles", "guardrails", "defaults", "main.yml")) as f:
        d = yaml.safe_load(f)
    return {"label": d["guardrails_lane_label"], "primary": d["guardrails_primary_lane"],
            "secondary": d["guardrails_secondary_lane"], "effect": d["guardrails_lane_taint_effect"],
            "primary_node": d["guardrails_primary_node"], "secondary_node": d["guardrails_secondary_node"]}


LANES = _lane_model()
LANE_TAINT = {"key": LANES["label"], "value": LANES["secondary"], "effect": LANES["effect"]}
LANE_TOLERATION = dict(LANE_TAINT, operator="Equal")


def set_lanes(cluster, uncordon=False):
    """Where runbook 000 leaves the cluster: lanes labelled, the secondary node tainted
    (and cordoned). ``uncordon``: where runbook 002 starts, the secondary node schedulable."""
    m = LANES
    cluster.kubectl("label", "node", m["primary_node"], "%s=%s" % (m["label"], m["primary"]), "--overwrite")
    cluster.kubectl("label", "node", m["secondary_node"], "%s=%s" % (m["label"], m["secondary"]), "--overwrite")
    cluster.kubectl("taint", "node", m["secondary_node"], "%s=%s:%s" % (m["label"], m["secondary"], m["effect"]),
                    "--overwrite")
    if uncordon:
        cluster.kubectl("uncordon", m["secondary_node"])


def clear_lanes(cluster):
    """Back to the fixture: the secondary node cordoned, no lane labels or taint."""
    m = LANES
    cluster.kubectl("cordon", m["secondary_node"])
    cluster.kubectl("label", "node", m["primary_node"], m["secondary_node"], m["label"] + "-", check=False)
    cluster.kubectl("taint", "node", m["secondary_node"], "%s:%s-" % (m["label"], m["effect"]), check=False)


def evidence_runner(run_playbook, cluster, evidence, playbook, **defaults):
    """``run(playbook=..., check=False, **extra)``: a playbook run whose evidence (and the
    rollback's search for it) stays under ``evidence``; ``defaults`` are extra vars."""
    def run(playbook=playbook, check=False, **extra):
        extra = dict(dict(defaults, evidence_root=str(evidence), rollback_evidence_root=str(evidence)), **extra)
        return run_playbook(cluster, playbook, extra_vars=extra, check=check)
    run.evidence = evidence
    return run
