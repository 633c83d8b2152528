"""Reading the local cluster's audit log (one JSON event per line) in tests."""

import json
import os


def audit_entries(cluster, since=0):
    """Audit events written after byte offset ``since`` of the audit log."""
    with open(cluster.audit_log, "rb") as f:
        f.seek(since)
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


def audit_size(cluster):
    return os.path.getsize(cluster.audit_log)
