# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of runbook 003 (module_utils/active_passive.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils import active_passive as ap
from ansible_collections.homelab.k8s_ha.plugins.module_utils.failback import decision_text
from ansible_collections.homelab.k8s_ha.plugins.module_utils.scheduling import untolerated_taints


def _wrap(name, fn, *args):
    try:
        return fn(*args)
    except (KeyError, ValueError, TypeError) as e:
        raise AnsibleFilterError("%s: %s" % (name, e))


def ap_model_errors(model):
    return ap.model_errors(model)


def ap_conversion_fields(workload, model):
    return _wrap("ap_conversion_fields", ap.conversion_fields, workload, model)


def ap_read(targets, deployments):
    """Each target with its Deployment from the preflight's LISTs, as a loop of reads registers them."""
    return _wrap("ap_read", ap.read_targets, targets, deployments)


def ap_targets(deployments, model):
    """The Deployments runbook 003 converts, as {namespace, name}: those whose nodeSelector
    holds the pin, and those already converted (so that a second run finds them again)."""
    found = [{"namespace": w["metadata"]["namespace"], "name": w["metadata"]["name"]} for w in deployments
             if ap.pinned(w, model["pin"])]
    return sorted(found + [c for c in ap_converted(deployments, model) if c not in found],
                  key=lambda t: (t["namespace"], t["name"]))


def ap_changes(workloads, model, wait_timeout):
    """workload_fields parameters that convert each Deployment (phase 3)."""
    return [{"namespace": w["metadata"]["namespace"], "name": w["metadata"]["name"],
             "fields": _wrap("ap_changes", ap.conversion_fields, w, model), "wait_timeout": int(wait_timeout)}
            for w in workloads]


def ap_missing_pdbs(workloads, pdbs, max_unavailable):
    """A PodDisruptionBudget for each Deployment that no existing one covers."""
    return [_wrap("ap_missing_pdbs", ap.pdb_for, w, int(max_unavailable)) for w in workloads
            if not ap.covering_pdbs(w, pdbs)]


def ap_ident(params):
    """"namespace/name" of module parameters or of an object."""
    meta = params.get("metadata") or params
    return "%s/%s" % (meta.get("namespace"), meta.get("name")) if meta.get("namespace") else meta.get("name")


def ap_restorable(obj):
    """An object as read, without what the API server owns (status, uid, resourceVersion,
    managedFields, timestamps): what a rollback writes back."""
    out = dict((k, v) for k, v in obj.items() if k != "status")
    meta = dict((k, v) for k, v in (obj.get("metadata") or {}).items()
                if k in ("name", "namespace", "labels", "annotations"))
    out["metadata"] = meta
    return out


def ap_descheduler_objects(cfg):
    return _wrap("ap_descheduler_objects", ap.descheduler_objects, cfg)


def ap_failback_runner_objects(cfg):
    return _wrap("ap_failback_runner_objects", ap.failback_runner_objects, cfg)


def ap_converted(workloads, model):
    """The Deployments whose preferred node affinity matches the model's priority label:
    those phase 3 converted, which the guarded failback looks after."""
    out = []
    for w in workloads:
        terms = ((((w.get("spec") or {}).get("template") or {}).get("spec") or {}).get("affinity") or {}).get(
            "nodeAffinity", {}).get(ap.PREFERRED) or []
        if any(e.get("key") == model["priority_label"] for t in terms
               for e in (t.get("preference") or {}).get("matchExpressions") or []):
            out.append({"namespace": w["metadata"]["namespace"], "name": w["metadata"]["name"]})
    return out


def ap_decision_text(d):
    """One line per failback decision (failback.decision_text)."""
    return decision_text(d)


def ap_label_selectors(workload):
    """The Deployment's matchLabels as k8s_info label_selectors."""
    return ["%s=%s" % kv for kv in sorted(((workload.get("spec") or {}).get("selector") or {}).get("matchLabels", {}).items())]


def ap_away(placement, node):
    """From {"ns/name": [nodes of its live pods]}: each app not running, or not only on ``node``."""
    return ["%s (%s)" % (app, ", ".join(nodes) or "no pod") for app, nodes in sorted(placement.items())
            if not nodes or set(nodes) != {node}]


def ap_untolerating(pods, taint):
    """The pods (namespace/name) that do not tolerate ``taint``: on a GPU node, intruders."""
    return ["%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods
            if untolerated_taints((p.get("spec") or {}).get("tolerations") or [], [taint])]


def ap_drill_state(pods, workloads):
    return ap.drill_state(pods, workloads)


def ap_drill_check(pods, workloads, test, node):
    return _wrap("ap_drill_check", ap.drill_check, pods, workloads, test, node)


def ap_drill_report(marks, toleration_seconds, scenario_one, health=None):
    return ap.drill_report(marks or {}, toleration_seconds, scenario_one, health)


def ap_refs(objects):
    """{namespace, name} of each object."""
    return [{"namespace": o["metadata"]["namespace"], "name": o["metadata"]["name"]} for o in objects]


def ap_victim(pods, workload, node):
    """A Running pod of ``workload`` (a Deployment) on ``node``, for scenario 4; fails if none."""
    labels = workload["spec"]["selector"]["matchLabels"]
    for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if p["metadata"]["namespace"] == workload["metadata"]["namespace"] \
                and (p.get("spec") or {}).get("nodeName") == node and (p.get("status") or {}).get("phase") == "Running" \
                and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items()):
            return p
    raise AnsibleFilterError("ap_victim: no Running pod of %s/%s on %s" % (
        workload["metadata"]["namespace"], workload["metadata"]["name"], node))


class FilterModule(object):
    def filters(self):
        return {
            "ap_model_errors": ap_model_errors,
            "ap_conversion_fields": ap_conversion_fields,
            "ap_targets": ap_targets,
            "ap_read": ap_read,
            "ap_changes": ap_changes,
            "ap_missing_pdbs": ap_missing_pdbs,
            "ap_ident": ap_ident,
            "ap_restorable": ap_restorable,
            "ap_descheduler_objects": ap_descheduler_objects,
            "ap_failback_runner_objects": ap_failback_runner_objects,
            "ap_untolerating": ap_untolerating,
            "ap_label_selectors": ap_label_selectors,
            "ap_away": ap_away,
            "ap_drill_state": ap_drill_state,
            "ap_drill_check": ap_drill_check,
            "ap_refs": ap_refs,
            "ap_victim": ap_victim,
            "ap_drill_report": ap_drill_report,
            "ap_converted": ap_converted,
            "ap_decision_text": ap_decision_text,
        }
