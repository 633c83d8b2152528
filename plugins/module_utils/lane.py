# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lane model of a node, pure: label and taint syntax, desired state, difference.

``validate`` checks input by Kubernetes' own syntax rules before anything is sent.
``desired_node`` turns a Node and the wanted labels, taints and cordon state into
the Node as it should be, with a DifferenceTracker of what changes and the
parameters that would undo it. No I/O here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import DifferenceTracker

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# A taint as a module option takes it (argument spec suboptions; lane_node, app_gates_info).
TAINT_OPTIONS = dict(
    key=dict(type="str", required=True, no_log=False),
    value=dict(type="str"),
    effect=dict(type="str", required=True, choices=list(TAINT_EFFECTS)),
)
TAINTS_STATES = ("present", "absent", "exact")
# Taints owned by Kubernetes' own controllers; `exact` never adds or removes them.
SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")

_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def qualified_name_error(key):
    """Why ``key`` is not a valid label/taint key (prefix/name), or None."""
    if not isinstance(key, str) or not key:
        return "must be a non-empty string"
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "prefix before '/' must not be empty"
        if len(prefix) > 253 or not all(_DNS_LABEL.match(p) for p in prefix.split(".")):
            return ("prefix %r must be a DNS subdomain: lowercase letters, digits, '-' and '.',"
                    " at most 253 characters" % prefix)
    if len(name) > 63:
        return "name part %r must be at most 63 characters" % name
    if not _NAME.match(name):
        return ("name part %r must consist of letters, digits, '-', '_' or '.', and start and"
                " end with a letter or digit" % name)
    return None


def label_value_error(value):
    """Why ``value`` is not a valid label value, or None (empty is valid)."""
    if not isinstance(value, str):
        return "must be a string (quote it in YAML)"
    if value == "":
        return None
    if len(value) > 63:
        return "must be at most 63 characters"
    if not _NAME.match(value):
        return ("must consist of letters, digits, '-', '_' or '.', and start and end with a"
                " letter or digit")
    return None


def validate(labels, taints):
    """Every syntax error in the wanted labels and taints, as messages naming the field."""
    errors = []
    for key, value in sorted((labels or {}).items()):
        err = qualified_name_error(key)
        if err:
            errors.append("labels: key %r %s" % (key, err))
        if value is not None:
            err = label_value_error(value)
            if err:
                errors.append("labels: value %r of %r %s" % (value, key, err))
    for i, taint in enumerate(taints or []):
        err = qualified_name_error(taint.get("key"))
        if err:
            errors.append("taints[%d].key %r %s" % (i, taint.get("key"), err))
        if taint.get("value"):
            err = label_value_error(taint["value"])
            if err:
                errors.append("taints[%d].value %r %s" % (i, taint["value"], err))
        if taint.get("effect") not in TAINT_EFFECTS:
            errors.append("taints[%d].effect %r must be one of %s"
                          % (i, taint.get("effect"), ", ".join(TAINT_EFFECTS)))
    return errors


def _taint(t):
    """A taint reduced to what identifies and defines it (timeAdded is bookkeeping)."""
    out = {"key": t["key"], "effect": t["effect"]}
    if t.get("value"):
        out["value"] = t["value"]
    return out


def _is_system(t):
    return t["key"].startswith(SYSTEM_TAINT_PREFIXES)


def desired_taints(current, wanted, state):
    """The node's taint list after applying ``wanted`` with ``state``.

    Taints are identified by key and effect, as kubectl taint does. ``present`` adds
    or updates, ``absent`` removes, ``exact`` makes the non-system taints exactly
    ``wanted``. Existing taints keep their order (and timeAdded)."""
    wanted = [_taint(t) for t in wanted]
    ident = dict(((t["key"], t["effect"]), t) for t in wanted)
    out = []
    for t in current:
        key = (t["key"], t["effect"])
        if key in ident:
            if state == "absent":
                continue
            new = dict(t)
            new.pop("value", None)
            new.update(ident.pop(key))
            out.append(new)
        elif state == "exact" and not _is_system(t):
            continue
        else:
            out.append(t)
    if state != "absent":
        out.extend(t for t in wanted if (t["key"], t["effect"]) in ident)
    return out


def lane_state(node):
    """The fields lane_node manages, as plain data."""
    return {
        "labels": dict(node["metadata"].get("labels") or {}),
        "taints": [_taint(t) for t in (node.get("spec") or {}).get("taints") or []],
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
    }


def desired_node(node, labels=None, taints=None, taints_state="present", cordon=None):
    """(new node, DifferenceTracker, rollback parameters) for the wanted lane state.

    ``labels``: key -> value, a None value removes the label. ``taints``: list of
    {key, value, effect}; None leaves taints alone. ``cordon``: True/False/None."""
    new = copy.deepcopy(node)
    meta = new["metadata"]
    spec = new.setdefault("spec", {})
    before = lane_state(node)

    node_labels = dict(meta.get("labels") or {})
    for key, value in (labels or {}).items():
        if value is None:
            node_labels.pop(key, None)
        else:
            node_labels[key] = value
    meta["labels"] = node_labels

    if taints is not None:
        new_taints = desired_taints(spec.get("taints") or [], taints, taints_state)
        if new_taints:
            spec["taints"] = new_taints
        else:
            spec.pop("taints", None)

    if cordon is True:
        spec["unschedulable"] = True
    elif cordon is False:
        spec.pop("unschedulable", None)

    after = lane_state(new)
    tracker = DifferenceTracker()
    tracker.add("labels", before["labels"], after["labels"])
    tracker.add("taints", before["taints"], after["taints"])
    tracker.add("unschedulable", before["unschedulable"], after["unschedulable"])

    rollback = {"name": meta["name"]}
    touched = sorted(k for k in set(before["labels"]) | set(after["labels"])
                     if before["labels"].get(k) != after["labels"].get(k))
    if touched:
        rollback["labels"] = dict((k, before["labels"].get(k)) for k in touched)
    if before["taints"] != after["taints"]:
        rollback["taints"] = [t for t in before["taints"] if not _is_system(t)]
        rollback["taints_state"] = "exact"
    if before["unschedulable"] != after["unschedulable"]:
        rollback["cordon"] = before["unschedulable"]
    return new, tracker, rollback
