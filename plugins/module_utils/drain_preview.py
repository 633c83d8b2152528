# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of drain_preview_info: the node's pods, dry-run cordon and evictions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.drain import classify, summary


def run_drain_preview_info(module):
    p = module.params
    node = p["node"]
    if module.get("Node", "v1", node) is None:
        names = sorted(n["metadata"]["name"] for n in module.list("Node"))
        module.fail_json(msg="node: no node named %r; nodes are: %s" % (node, ", ".join(names)))
    cordon_refusal = module.dry_run_patch("Node", "v1", node, {"spec": {"unschedulable": True}})
    pods = module.list("Pod", field_selector="spec.nodeName=%s" % node)
    rows = []
    for pod in sorted(pods, key=lambda x: (x["metadata"]["namespace"], x["metadata"]["name"])):
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        decision, why = classify(pod, p["ignore_daemonsets"], p["delete_emptydir_data"], p["force"])
        row = {"namespace": ns, "name": name, "outcome": {"skip": "skipped", "refuse": "refused"}.get(decision),
               "detail": why}
        if decision == "evict":
            refused = module.evict_dry_run(name, ns)
            row["outcome"] = "blocked" if refused else "evicted"
            row["detail"] = refused or why
        rows.append(row)
    lines, ok = summary(node, rows, cordon_refusal)
    module.exit_json(changed=False, node=node, pods=rows, cordon_refusal=cordon_refusal, drainable=ok,
                     report=lines)
