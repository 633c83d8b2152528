# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of the placement audit: one LIST per kind, then the pure audit."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.lane import validate
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import LONGHORN_API as LONGHORN
from ansible_collections.homelab.k8s_ha.plugins.module_utils.placement import (
    WORKLOAD_KINDS,
    audit,
    daemonset_coverage,
    failed_scheduling_since,
    longhorn_dropped,
    render_coverage,
    render_report,
    utc_time,
)


def _taint_toleration(module, rows, namespace):
    """``[Longhorn's Setting taint-toleration]`` when the taints drop a DaemonSet of
    longhorn-manager's (rows of daemonset_coverage), else []."""
    if not longhorn_dropped(rows) or not module.served("Setting", LONGHORN):
        return []
    setting = module.get("Setting", LONGHORN, "taint-toleration", namespace=namespace)
    return [setting] if setting else []


def run_placement_audit(module):
    """Read the cluster (one LIST per kind, all namespaces) and audit it."""
    params = module.params
    since = None
    if params.get("events_since"):
        # before any request: compared as a string, a time that is not RFC 3339 in UTC
        # would count no event (or every one) and the audit would say nothing was wrong
        since, error = utc_time(params["events_since"])
        if error:
            module.fail_json(msg=error)
    nodes = module.list("Node")
    names = sorted(n["metadata"]["name"] for n in nodes)
    focus = params.get("node")
    if focus and focus not in names:
        module.fail_json(msg="node: no node named %r; nodes are: %s" % (focus, ", ".join(names)))
    unknown = [n for n in params.get("if_schedulable") or [] if n not in names]
    if unknown:
        module.fail_json(msg="if_schedulable: no node named %s; nodes are: %s"
                         % (", ".join(repr(n) for n in unknown), ", ".join(names)))
    judged = params.get("daemonset_taints") or {}
    errors = ["daemonset_taints: no node named %r; nodes are: %s" % (n, ", ".join(names))
              for n in sorted(judged) if n not in names]
    for n, taints in sorted(judged.items()):
        errors += ["daemonset_taints[%s]: %s" % (n, e) for e in validate({}, taints or [])]
    if errors:
        module.fail_json(msg="; ".join(errors))
    wanted = set(params.get("namespaces") or [])

    def keep(items):
        return [i for i in items if not wanted or i["metadata"].get("namespace") in wanted]

    pods = keep(module.list("Pod"))
    workloads, daemonsets = [], []
    for kind, api_version in WORKLOAD_KINDS:
        items = module.list(kind, api_version)
        for item in items:
            item.setdefault("kind", kind)
        workloads += keep(items)
        if kind == "DaemonSet":
            daemonsets = items  # node agents live in their own namespaces: all of them
    # guarded means kept off the node the audit is about (the secondary lane's), by the
    # workload's own spec; without a node, off the nodes judged as if uncordoned
    facts = audit(nodes, pods, workloads, params.get("if_schedulable"), [focus] if focus else None)
    facts["report"] = render_report(facts, focus)
    if judged:
        facts["daemonsets"] = daemonset_coverage(daemonsets, nodes, judged)
        facts["report"] += render_coverage(facts["daemonsets"], judged)
        if params.get("longhorn_namespace"):
            facts["longhorn_settings"] = _taint_toleration(module, facts["daemonsets"], params["longhorn_namespace"])
    if since:
        events = module.list("Event", field_selector="reason=FailedScheduling")
        facts["failed_scheduling"] = failed_scheduling_since(keep(events), since, pods)
    return facts
