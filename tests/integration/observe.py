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
