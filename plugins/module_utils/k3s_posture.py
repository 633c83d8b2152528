# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of k3s_posture_info: nodes, two reads of the leases, /readyz and /healthz."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.posture import (
    datastore_from_api,
    datastore_from_host,
    decision,
    lease_report,
    servers,
)


def run_k3s_posture_info(module):
    p = module.params
    if p["lease_sample_seconds"] <= 0:
        module.fail_json(msg="lease_sample_seconds: %s; allowed: more than 0" % p["lease_sample_seconds"])
    nodes = module.list("Node")
    first = module.list("Lease", "coordination.k8s.io/v1", namespace="kube-system")
    time.sleep(p["lease_sample_seconds"])
    second = module.list("Lease", "coordination.k8s.io/v1", namespace="kube-system")
    api = datastore_from_api(nodes)
    host = None
    if p["server_files"] is not None:
        host = datastore_from_host(p["server_files"].get("config"), p["server_files"].get("db_entries"))
    datastore = host["datastore"] if host and host["datastore"] != "unknown" else api["datastore"]
    leases = lease_report(first, second, p["leases"])
    health = {}
    for path in ("/readyz", "/healthz"):
        status, body = module.raw_get(path)
        health[path] = {"status": status, "ok": status == 200 and body.strip() == "ok", "body": body.strip()}
    server_names = servers(nodes)
    report = [
        "Datastore: %s (%s)" % (datastore, "; ".join(api["evidence"] + (host["evidence"] if host else []))),
        "Servers: %s; nodes: %s" % (", ".join(server_names) or "none labelled",
                                    ", ".join(sorted(n["metadata"]["name"] for n in nodes))),
        "Decision: %s" % decision(datastore, server_names),
    ] + ["%s: %s" % (k, "ok" if v["ok"] else "NOT OK (HTTP %s) %s" % (v["status"], v["body"][:200]))
         for k, v in sorted(health.items())] + [
        "Lease %s: %s" % (k, "renewing, held by %s, %s transition(s)" % (v["holder"], v["transitions"])
                          if v["renewing"] else ("NOT renewing in %ss" % p["lease_sample_seconds"]
                                                 if v["present"] else "absent"))
        for k, v in sorted(leases.items())]
    module.exit_json(changed=False, datastore=datastore, datastore_from_api=api, datastore_from_host=host,
                     servers=server_names, health=health, leases=leases, report=report,
                     healthy=all(v["ok"] for v in health.values()) and all(v["renewing"] for v in leases.values()))
