# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of app_gates_info: the workload, its pods, budgets, claims, Longhorn
volumes and the secondary node, read once each; the verdicts are migration.py's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.homelab.k8s_ha.plugins.module_utils.health import restart_counts
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import LONGHORN_API as LONGHORN, LONGHORN_CSI, missing_namespace
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volumes import views
from ansible_collections.homelab.k8s_ha.plugins.module_utils.migration import (
    KNOWN_DATABASES,
    claims_of,
    classify,
    gates_report,
    safety_gates,
    guardrails_state,
    strategy_refusal,
)

ARGOCD = "argoproj.io/v1alpha1"


def _longhorn_volumes(module, pvcs, claims, namespace):
    """The app's Longhorn volumes as {"name", "robustness", "nodes"}; None when Longhorn's
    CRDs are not served (then the gate is not evaluated)."""
    if not module.served("Volume", LONGHORN):
        return None
    bound = [p["spec"].get("volumeName") for p in pvcs
             if p["metadata"]["name"] in claims and p.get("spec", {}).get("volumeName")]
    pvs = dict((pv["metadata"]["name"], pv) for pv in module.list("PersistentVolume"))
    handles = [pvs[b]["spec"]["csi"]["volumeHandle"] for b in bound
               if b in pvs and (pvs[b]["spec"].get("csi") or {}).get("driver") == LONGHORN_CSI]
    if not handles:
        return []
    volumes = module.list("Volume", LONGHORN, namespace=namespace)
    if not volumes and not module.namespace_exists(namespace):
        module.fail_json(msg=missing_namespace("longhorn_namespace", namespace))
    found = views(volumes,
                  module.list("Replica", LONGHORN, namespace=namespace),
                  module.list("Engine", LONGHORN, namespace=namespace))
    all_views = dict((v["name"], v) for v in found)
    out = []
    for h in sorted(handles):
        v = all_views.get(h)
        out.append({"name": h, "robustness": v["robustness"] if v else "missing",
                    "nodes": sorted(r["node"] for r in v["replica_list"] if not r["failed"]) if v else []})
    return out


def _application(module, ref):
    """``[the Application]`` named by ``ref``, or [] (not given, Argo CD not installed, or
    no such Application)."""
    if not ref or not module.served("Application", ARGOCD):
        return []
    app = module.get("Application", ARGOCD, ref["name"], namespace=ref["namespace"])
    return [app] if app else []


def run_app_gates_info(module):
    p = module.params
    ns, name, kind = p["namespace"], p["name"], p["kind"]
    workload = module.get(kind, "apps/v1", name, namespace=ns)
    if workload is None:
        names = sorted(o["metadata"]["name"] for o in module.list(kind, "apps/v1", namespace=ns))
        module.fail_json(msg="name: no %s %s in namespace %s; there are: %s"
                         % (kind, name, ns, ", ".join(names) or "none"))
    selector = ",".join("%s=%s" % kv for kv in sorted(
        (workload["spec"].get("selector", {}).get("matchLabels") or {}).items()))
    pods = module.list("Pod", namespace=ns, label_selector=selector) if selector else []
    pvcs = module.list("PersistentVolumeClaim", namespace=ns)
    classification = classify(workload, pvcs, p["databases"] or KNOWN_DATABASES)
    refusal = strategy_refusal(p["strategy"], classification, "%s/%s" % (ns, name)) if p["strategy"] else None
    # the claims the pods mount by name (a StatefulSet's templates end in "-*")
    claims = [c for c in claims_of(workload) if not c.endswith("-*")]
    guardrails = None
    if p["secondary_node"]:
        node = module.get("Node", "v1", p["secondary_node"])
        if node is None:
            module.fail_json(msg="secondary_node: no node named %s" % p["secondary_node"])
        guardrails = guardrails_state(
            node, module.list("Pod", field_selector="spec.nodeName=%s" % p["secondary_node"]), p["lane_taint"])
    gates = safety_gates(
        workload, pods, module.list("PodDisruptionBudget", "policy/v1", namespace=ns),
        datetime.datetime.now(datetime.timezone.utc), p["restart_bound"],
        volumes=_longhorn_volumes(module, pvcs, claims, p["longhorn_namespace"]) if claims else None,
        guardrails=guardrails, stateful=classification["class"] != "stateless")
    passed = not refusal and all(g["passed"] for g in gates)
    module.exit_json(changed=False, classification=classification, strategy_refusal=refusal, gates=gates,
                     hpas=module.list("HorizontalPodAutoscaler", "autoscaling/v2", namespace=ns),
                     applications=_application(module, p["argocd_application"]),
                     passed=passed, selector=workload["spec"].get("selector", {}).get("matchLabels") or {},
                     restarts=restart_counts(pods),
                     report=gates_report("%s/%s" % (ns, name), classification, refusal, gates))
