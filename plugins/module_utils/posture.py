# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runbook 001 section 2.1, the k3s control-plane posture, as pure functions.

The datastore is read from what the API shows (k3s labels the servers of an embedded
etcd cluster ``node-role.kubernetes.io/etcd=true`` and records its flags in the
``k3s.io/node-args`` annotation) and, when the server's files were read, from
``/etc/rancher/k3s/config.yaml`` and ``/var/lib/rancher/k3s/server/db/``. Leases
renew when their ``renewTime`` moves between two reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

ETCD_ROLE = "node-role.kubernetes.io/etcd"
SERVER_ROLES = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
NODE_ARGS = "k3s.io/node-args"


def _node_args(node):
    raw = node.get("metadata", {}).get("annotations", {}).get(NODE_ARGS)
    try:
        args = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [a for a in args if isinstance(a, str)]


def is_k3s(node):
    meta = node.get("metadata", {})
    return (meta.get("labels", {}).get("node.kubernetes.io/instance-type") == "k3s"
            or any(k.startswith("k3s.io/") for k in meta.get("annotations", {}))
            or "k3s" in node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""))


def servers(nodes):
    return sorted(n["metadata"]["name"] for n in nodes
                  if any(n["metadata"].get("labels", {}).get(r) == "true" for r in SERVER_ROLES))


def datastore_from_api(nodes):
    """{"datastore", "evidence"} from the nodes as the API shows them."""
    etcd = sorted(n["metadata"]["name"] for n in nodes
                  if n["metadata"].get("labels", {}).get(ETCD_ROLE) == "true")
    if etcd:
        return {"datastore": "embedded etcd",
                "evidence": ["%s=true on %s" % (ETCD_ROLE, ", ".join(etcd))]}
    for n in nodes:
        args = _node_args(n)
        if any(a.startswith("--datastore-endpoint") for a in args):
            return {"datastore": "external datastore",
                    "evidence": ["%s of %s has --datastore-endpoint" % (NODE_ARGS, n["metadata"]["name"])]}
        if "--cluster-init" in args:
            return {"datastore": "embedded etcd",
                    "evidence": ["%s of %s has --cluster-init" % (NODE_ARGS, n["metadata"]["name"])]}
    k3s_servers = servers([n for n in nodes if is_k3s(n)])
    if k3s_servers:
        return {"datastore": "sqlite",
                "evidence": ["k3s server(s) %s without %s and without --datastore-endpoint: "
                             "the single-server default (confirm on the host)"
                             % (", ".join(k3s_servers), ETCD_ROLE)]}
    return {"datastore": "unknown", "evidence": ["no node shows k3s labels or annotations"]}


def datastore_from_host(config, db_entries):
    """{"datastore", "evidence"} from server-1's config.yaml (parsed) and db/ listing."""
    config = config or {}
    evidence = []
    kind = "unknown"
    endpoint = config.get("datastore-endpoint")
    if endpoint:
        kind = "external datastore"
        evidence.append("config.yaml: datastore-endpoint %s" % endpoint.split("://")[0] + "://...")
    elif config.get("cluster-init"):
        kind = "embedded etcd"
        evidence.append("config.yaml: cluster-init true")
    entries = set(db_entries or [])
    if "etcd" in entries:
        evidence.append("db/etcd exists")
        kind = "embedded etcd" if kind == "unknown" else kind
    if "state.db" in entries:
        evidence.append("db/state.db exists")
        kind = "sqlite" if kind == "unknown" else kind
    if not evidence:
        evidence.append("config.yaml names no datastore and db/ has neither state.db nor etcd")
    return {"datastore": kind, "evidence": evidence}


def lease_report(first, second, names):
    """Per lease: holder, whether it renewed between the two reads, and transitions."""
    a = dict((x["metadata"]["name"], x.get("spec", {})) for x in first)
    b = dict((x["metadata"]["name"], x.get("spec", {})) for x in second)
    out = {}
    for name in names:
        s1, s2 = a.get(name), b.get(name)
        if s1 is None or s2 is None:
            out[name] = {"present": False, "renewing": False, "holder": None}
            continue
        out[name] = {
            "present": True,
            "holder": s2.get("holderIdentity"),
            "renew_times": [s1.get("renewTime"), s2.get("renewTime")],
            "renewing": bool(s2.get("renewTime")) and s2.get("renewTime") != s1.get("renewTime"),
            "holder_changed": s1.get("holderIdentity") != s2.get("holderIdentity"),
            "transitions": s2.get("leaseTransitions", 0),
            "duration_seconds": s2.get("leaseDurationSeconds"),
        }
    return out


def decision(datastore, server_names):
    """The runbook's decision tree for what was found."""
    if datastore == "sqlite":
        return ("single-server sqlite (expected): keep the single-writer control plane on %s; "
                "server-2 stays an agent until a third server is added. Migrating to HA "
                "(three servers, embedded etcd) needs approval." % (", ".join(server_names) or "server-1"))
    if datastore == "embedded etcd":
        return ("embedded etcd with %d server(s): %s" % (
            len(server_names), "quorum needs three servers; with fewer, one loss stops writes"
            if len(server_names) < 3 else "quorum survives one server loss"))
    if datastore == "external datastore":
        return "external datastore: its own HA decides the control plane's availability (advanced; not recommended for a homelab)"
    return "datastore unknown: read /etc/rancher/k3s/config.yaml and /var/lib/rancher/k3s/server/db/ on server-1"
