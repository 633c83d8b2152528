# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of the placement audit: one LIST per kind, then the pure audit."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
    WORKLOAD_KINDS,
    audit,
    failed_scheduling_since,
    render_report,
)


def run_placement_audit(module):
    """Read the cluster (one LIST per kind, all namespaces) and audit it."""
    params = module.params
    nodes = module.list("Node")
    names = sorted(n["metadata"]["name"] for n in nodes)
    focus = params.get("node")
    if focus and focus not in names:
        module.fail_json(msg="node: no node named %r; nodes are: %s" % (focus, ", ".join(names)))
    unknown = [n for n in params.get("if_schedulable") or [] if n not in names]
    if unknown:
        module.fail_json(msg="if_schedulable: no node named %s; nodes are: %s"
                         % (", ".join(repr(n) for n in unknown), ", ".join(names)))
    wanted = set(params.get("namespaces") or [])

    def keep(items):
        return [i for i in items if not wanted or i["metadata"].get("namespace") in wanted]

    pods = keep(module.list("Pod"))
    workloads = []
    for kind, api_version in WORKLOAD_KINDS:
        for item in keep(module.list(kind, api_version)):
            item.setdefault("kind", kind)
            workloads.append(item)
    facts = audit(nodes, pods, workloads, params.get("if_schedulable"))
    facts["report"] = render_report(facts, focus)
    since = params.get("events_since")
    if since:
        events = module.list("Event", field_selector="reason=FailedScheduling")
        facts["failed_scheduling"] = failed_scheduling_since(keep(events), since)
    return facts
