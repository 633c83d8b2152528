# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""I/O adapter of workload_fields: validate, patch with resourceVersion, wait for the rollout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import (
    fields_change,
    get_field,
    FLUSH_SECONDS,
    STRANDED_SETTLE,
    rollout_state,
    stranded_pods,
    validate,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.managers import (
    decide,
    manager_text,
    owners,
    policies,
    refusal,
    suspension,
    verdict,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils.kube import (
    ConflictError,
    ConflictRetriesExhausted,
    NotFoundError,
    ObjectNotFound,
    given,
)


def run_workload_fields(module):
    """One object (``name``), or each of ``targets`` in one call (K8sHaModule.run_each)."""
    p = module.params
    try:
        chosen = policies(p["managed"])
    except ValueError as e:
        module.fail_json(msg=str(e))
    if p.get("targets") is not None:
        targets = [given(t) for t in p["targets"]]
        for t in targets:
            # recorded with what it was done to (the rollback record reads kind from it)
            t.setdefault("kind", p["kind"])
            t.setdefault("api_version", p["api_version"])
        # every target's fields checked against the object as it is, before the first write;
        # a failure to read one (kind not served, refused) names it too
        errors, suspends = [], []
        for i, t in enumerate(targets):
            label = "targets[%d] (%s/%s)" % (i, t["namespace"], t["name"])
            with module.about(label):
                found, suspend = _check(module, t, chosen)
                errors += ["%s: %s" % (label, e) for e in found]
                suspends.append(suspend)
        if errors:
            module.fail_json(msg="; ".join(errors))
        module.run_each("targets", _with_suspensions(module, targets, suspends), lambda t: _fields(module, t),
                        name=lambda t: "%s/%s" % (t["namespace"], t["name"]))
    errors, suspend = _check(module, p, chosen)
    if suspend and not errors:
        errors = ["managed: suspending %s needs the object in targets (the suspension is a change of its own, "
                  "recorded for the rollback)" % ", ".join(v["object"] for v in suspend)]
    if errors:
        module.fail_json(msg="; ".join(errors))
    tracker, result = _fields(module, p)
    module.exit_with(tracker, **result)


def _with_suspensions(module, targets, suspends):
    """``targets`` with the suspension of each manager that ``managed: suspend`` suspends
    (managers.suspension) before the first target it manages, once; the targets it
    manages then show it as held by this run until the rollback."""
    out, done = [], {}
    for t, verdicts in zip(targets, suspends):
        for v in verdicts:
            if v["object"] not in done:
                target, hold = suspension(v, "this run's rollback")
                done[v["object"]] = hold
                out.append(target)
        if verdicts:
            # the same reads as _check's, judged again with this run's suspensions
            key = (t["kind"], t["namespace"], t["name"])
            current, read = _READ[key]
            _MANAGERS[key] = manager_text(_verdicts(current, read, list(module.params["held"]) + list(done.values())))
        out.append(t)
    return out


def _target(p):
    """kind, api_version, namespace, name, fields of a target (run_workload_fields gave
    each target the module's kind and api_version where it named none) or of the module's
    own options."""
    return p["kind"], p["api_version"], p["namespace"], p["name"], p["fields"]


def _check(module, p, chosen):
    """What is wrong with one target's input (its fields, then against the live object, then
    its managers under the policies ``chosen``), and the verdicts of the managers this run
    suspends for it: ``(errors, suspend)``."""
    kind, api_version, ns, name, fields = _target(p)
    errors = validate(fields)
    if errors:
        return errors, []
    current = module.get(kind, api_version, name, namespace=ns)
    if current is None:
        names = sorted(o["metadata"]["name"] for o in module.list(kind, api_version, namespace=ns))
        return ["name: no %s %s in namespace %s; there are: %s"
                % (kind, name, ns, ", ".join(names) or "none")], []
    errors = validate(fields, current)
    if errors:
        return errors, []
    read = _owners(module, current)
    _READ[(kind, ns, name)] = (current, read)
    verdicts = _verdicts(current, read, module.params["held"])
    _MANAGERS[(kind, ns, name)] = manager_text(verdicts)
    # an object that already has the fields is not edited: nothing for a manager to put back
    if not fields_change(current, fields, p.get("compare") or module.params["compare"])[1].has_difference:
        return [], []
    refuse, suspend = decide(verdicts, chosen)
    return ([refusal(refuse)] if refuse else []), suspend


# what _check read of each target (the object and its managers' objects, once) and the line
# its result shows (one module run, one process)
_READ = {}
_MANAGERS = {}


def _owners(module, current):
    """``[(ref, the manager's object)]`` for every manager the object's metadata names
    (managers.owners), each read once (None when its kind is not served or it does not exist)."""
    out = []
    for ref in owners(current, module.params["argocd_namespace"]):
        owner = None
        if ref["api_version"] and module.served(ref["kind"], ref["api_version"]):
            owner = module.get(ref["kind"], ref["api_version"], ref["name"], namespace=ref["namespace"])
        out.append((ref, owner))
    return out


def _verdicts(current, read, held):
    """The verdicts (managers.verdict) of what _owners read, under the holds ``held``."""
    return [v for v in (verdict(ref, owner, current, held) for ref, owner in read) if v]


def _fields(module, p):
    """One target: ``(tracker, result)``, the write and the wait for its rollout."""
    kind, api_version, ns, name, fields = _target(p)
    # a target's own wait options, else the module's
    wait = dict((k, module.params[k] if p.get(k) is None else p[k])
                for k in ("wait", "wait_timeout", "poll_interval"))
    outcome = {}

    def mutate(obj):
        new, tracker, rollback = fields_change(obj, fields, p.get("compare") or module.params["compare"])
        outcome.update(tracker=tracker, rollback=rollback)
        return new
    try:
        before, after = module.update(kind, api_version, name, mutate, namespace=ns)
    except (ConflictRetriesExhausted, ObjectNotFound) as e:
        module.fail_json(msg=str(e))
    tracker = outcome["tracker"]
    result = dict(before=dict((f, get_field(before, f)) for f in sorted(fields)),
                  rollback=outcome["rollback"], events=[], manager=_MANAGERS.get((kind, ns, name)))
    if tracker.has_difference and not module.check_mode and wait["wait"] and kind == "Deployment":
        t0 = time.monotonic()
        last = None
        kicks = 0  # at most 3 per wait: a pod that is Unschedulable for good is not churned
        next_look = t0 + STRANDED_SETTLE
        while True:
            obj = module.get(kind, api_version, name, namespace=ns)
            state, text = rollout_state(obj)
            if text != last:
                result["events"].append({"t": round(time.monotonic() - t0, 1), "message": text})
                last = text
            if state == "done":
                break
            if kicks < 3 and time.monotonic() >= next_look:
                # new pods the scheduler left for its 5-minute flush: looked for every STRANDED_SETTLE s
                kicks += _requeue_stranded(module, obj, ns, time.monotonic() - t0, t0, result)
                next_look = time.monotonic() + STRANDED_SETTLE
            if time.monotonic() - t0 >= wait["wait_timeout"]:
                # the fields were written: changed, with what undoes them
                module.fail_json(msg="%s/%s: rollout not done within wait_timeout %ss: %s"
                                 % (ns, name, wait["wait_timeout"], text), changed=True, **result)
            # the Deployment's status says how the rollout goes: read again when it changes
            module.wait_for_change(kind, api_version, obj["metadata"].get("resourceVersion"),
                                   wait["poll_interval"], namespace=ns, name=name)
    result["after"] = dict((f, get_field(after, f)) for f in sorted(fields))
    return tracker, result


def _requeue_stranded(module, deployment, ns, waited, t0, result):
    """Delete the new pods kube-scheduler would leave Pending for its 5-minute flush
    although what blocked them is gone (fields.stranded_pods). They never ran; their
    ReplicaSet makes new ones at once, which the scheduler tries at once. True when it
    deleted any."""
    selector = (deployment.get("spec", {}).get("selector") or {})
    labels = ",".join("%s=%s" % kv for kv in sorted((selector.get("matchLabels") or {}).items()))
    pods = module.list("Pod", namespace=ns, label_selector=labels) if labels and not selector.get(
        "matchExpressions") else module.list("Pod", namespace=ns)
    stranded = stranded_pods(deployment, module.list("ReplicaSet", "apps/v1", namespace=ns), pods, waited)
    deleted = []
    for pod in stranded:
        try:
            module.write("delete", "Pod", "v1", name=pod["metadata"]["name"], namespace=ns,
                         resource_version=pod["metadata"].get("resourceVersion"))
        except (ConflictError, NotFoundError):
            continue  # it changed or went meanwhile
        deleted.append(pod["metadata"]["name"])
    if not deleted:
        return False
    result["events"].append({"t": round(time.monotonic() - t0, 1), "message": (
        "deleted %s (never started): Unschedulable by a pod anti-affinity that is gone, and kube-scheduler "
        "would retry only after %d s (its InterPodAffinity queueing hint ignores a deleted pod's own "
        "anti-affinity); the ReplicaSet makes new pods at once" % (", ".join(deleted), FLUSH_SECONDS))})
    return True
