# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans, pure: what a mutating playbook would change, and the id an approval binds to.

A plan is a list of items, one per object that would change, each with the module
and parameters that make the change and the fields before and after (from that
module's check-mode diff). The plan id hashes exactly that content, so a cluster
that changed between the check run and the apply run gives another id.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import hashlib
import json
import os


def _changes(results):
    """The results that changed something; a failed check makes no plan."""
    for result in results:
        if result.get("failed"):
            raise ValueError("a plan cannot be made from a failed check: %s" % result.get("msg"))
        if result.get("changed"):
            yield result


def plan_items(results, kind="Node", module="homelab.k8s_ha.lane_node"):
    """Plan items from the registered check-mode results of a looped module task.

    Each result must carry ``item`` (the module parameters, with ``name``, or a whole
    object with ``metadata.name`` as kubernetes.core.k8s takes it) and ``diff``
    ({'before', 'after'}); results without a change are left out. ``kind`` names the
    objects unless the parameters carry their own ``kind``. A result's ``manager`` (who
    manages the object, workload_fields) goes into its item, and so into the plan's id."""
    items = []
    for result in _changes(results):
        params = result["item"]
        name = params["name"] if "name" in params else params["metadata"]["name"]
        before, after = _sides(result, params)
        item = {
            "object": "%s/%s" % (params.get("kind") or kind, name),
            "module": module,
            "params": params,
            "before": before,
            "after": after,
        }
        if result.get("manager"):
            item["manager"] = result["manager"]
        items.append(_plain(item))
    return sorted(items, key=lambda i: i["object"])


def _plain(value):
    """A copy of ``value`` made of plain dicts, lists and scalars (what JSON holds)."""
    return json.loads(json.dumps(value))


def per_definition(registered, definitions):
    """The results of one kubernetes.core.k8s call given a list of ``definitions``, as a
    loop with one call per definition registers them: ``[{..., "item": definition}]``.

    kubernetes.core.k8s answers one definition with that definition's result and several
    with ``result.results``, in the order given. A skipped call (no definitions) has none.
    Plans take one call per step this way instead of one per object; applies keep their
    loops, so that the objects written before a failure are still recorded."""
    definitions = list(definitions or [])
    if not definitions or registered.get("skipped"):
        return []
    if len(definitions) == 1:
        answers = [registered]
    else:
        answers = registered["result"]["results"]
    if len(answers) != len(definitions):
        raise ValueError("%d results for %d definitions" % (len(answers), len(definitions)))
    return [dict(answer, item=definition) for answer, definition in zip(answers, definitions)]


def _sides(result, params):
    """(before, after) of a change. kubernetes.core.k8s returns no diff when it would
    create or delete: a create is {} -> the leaf fields of the definition it was given
    (not the dry run's answer, whose uid and timestamps differ on every run); a delete is
    {"exists": true} -> {"exists": false}."""
    if "diff" in result:
        return result["diff"]["before"], result["diff"]["after"]
    if params.get("state") == "absent":
        return {"exists": True}, {"exists": False}
    return {}, _leaves(params.get("definition", params))


def _leaves(value, prefix=""):
    """{"spec.replicas": 0, ...}: a nested object as dotted paths to its scalars and lists."""
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    out = {}
    for key in sorted(value):
        out.update(_leaves(value[key], "%s.%s" % (prefix, key) if prefix else key))
    return out


def file_plan_items(results, root, module="ansible.builtin.template"):
    """Plan items from check-mode results of a looped file task (template, copy, replace).

    Each changed result's ``diff`` gives the file's content before and after; the
    object is the path relative to ``root`` (the GitOps checkout)."""
    items = []
    for result in _changes(results):
        diffs = result.get("diff") or []
        if isinstance(diffs, dict):
            diffs = [diffs]
        diff = [d for d in diffs if "after" in d][0]
        item = result.get("item") if isinstance(result.get("item"), dict) else {}
        path = (item.get("dest") or item.get("path") or result.get("dest") or result.get("path")
                or diff.get("after_header"))
        items.append({
            "object": "File/%s" % os.path.relpath(path, root),
            "module": module,
            "params": {"path": path},
            "before": {"content": _content(diff.get("before"))},
            "after": {"content": _content(diff.get("after"))},
        })
    return sorted(items, key=lambda i: i["object"])


def _content(value):
    """A file's content from a diff side; the file module reports {'state': ...} instead."""
    if isinstance(value, dict):
        return "" if value.get("state") == "absent" else "(%s)" % value.get("state", "file")
    return value or ""


def is_tuning(param):
    """Whether a module parameter only tunes how a change is made or waited for (poll
    intervals, timeouts, whether to wait), not what changes: ``wait``, ``*_interval``,
    ``*_timeout``."""
    return param == "wait" or param.endswith("_interval") or param.endswith("_timeout")


def _bound(item):
    """What an approval binds of an item: everything but the tuning parameters (an item
    that is not a plan item, such as the cluster's name beside runbook 004's items, as it is)."""
    if not isinstance(item, dict):
        return item
    params = item.get("params")
    if not isinstance(params, dict):
        return item
    return dict(item, params=dict((k, v) for k, v in params.items() if not is_tuning(k)))


def plan_id(items):
    """A short, stable hash of the plan's content (16 hex digits of SHA-256): the objects,
    their state before and after, and the parameters that make the change. Tuning
    parameters (``is_tuning``) are left out: a longer timeout at apply time is the same
    plan."""
    canonical = json.dumps([_bound(i) for i in items], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def plan_differences(approved, current):
    """Lines naming what differs between an approved plan's items and the current
    plan's: objects only in one of them, and per object the fields whose before, after
    or parameters differ (tuning parameters do not count)."""
    old = dict((_name(i), _bound(i)) for i in approved or [])
    new = dict((_name(i), _bound(i)) for i in current or [])
    lines = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            lines.append("%s: in the approved plan, no longer to change" % name)
        elif name not in old:
            lines.append("%s: to change now, not in the approved plan" % name)
        elif old[name] != new[name]:
            parts = []
            for side, label in (("before", "before"), ("after", "after"), ("params", "parameter")):
                parts.extend(_field_diffs(label + " ", old[name].get(side) or {}, new[name].get(side) or {}))
            if old[name].get("manager") != new[name].get("manager"):
                parts.append("manager: approved %s, now %s" % (_show(old[name].get("manager")),
                                                               _show(new[name].get("manager"))))
            lines.append("%s: %s" % (name, "; ".join(parts) or "differs"))
    return lines


def _name(item):
    """An item's object name; an item of another shape is named by its content."""
    if isinstance(item, dict) and "object" in item:
        return item["object"]
    return _show(item)


def _field_diffs(prefix, approved, current, depth=2):
    """``<prefix><field>: approved X, now Y`` for every field that differs; maps are
    compared key by key down to ``depth`` levels (labels.workload-lane, not the whole map)."""
    if depth > 0 and isinstance(approved, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(approved) | set(current)):
            if approved.get(key) != current.get(key):
                out.extend(_field_diffs(prefix + ("%s" % key if prefix.endswith(" ") else ".%s" % key),
                                        approved.get(key), current.get(key), depth - 1))
        return out
    return ["%s: approved %s, now %s" % (prefix.strip(), _show(approved), _show(current))]


def _show(value):
    return json.dumps(value, sort_keys=True)


def plan_report(items):
    """Lines a person reads: every object, field, before and after."""
    if not items:
        return ["No changes: the cluster already matches."]
    lines = []
    for item in items:
        lines.append("%s (%s):" % (item["object"], item["module"]))
        if item.get("manager"):
            lines.append("  managed by %s" % item["manager"])
        if item["object"].startswith("File/"):
            before, after = item["before"]["content"], item["after"]["content"]
            lines.extend("  " + line.rstrip("\n") for line in difflib.unified_diff(
                before.splitlines(True), after.splitlines(True),
                "a/" + item["object"][5:], "b/" + item["object"][5:]))
            continue
        for field in sorted(item["after"]):
            before, after = item["before"].get(field), item["after"][field]
            if isinstance(before, dict) and isinstance(after, dict):
                for key in sorted(set(before) | set(after)):
                    if before.get(key) != after.get(key):
                        lines.append("  %s.%s: %s -> %s" % (
                            field, key, _show(before.get(key)), _show(after.get(key))))
            else:
                lines.append("  %s: %s -> %s" % (field, _show(before), _show(after)))
    return lines


def snapshot_check(name, before, after):
    """A verification check: ``name`` is as it was before the run (``before``, the
    snapshot) now that the run is over (``after``). The detail names the fields that
    differ, each with its value now and before."""
    if before == after:
        return {"name": "%s equals its before-snapshot" % name, "passed": True, "detail": "equal"}
    keys = sorted(set(before or {}) | set(after or {})) if isinstance(before, dict) and isinstance(after, dict) else [None]
    diffs = []
    for key in keys:
        b = before if key is None else before.get(key)
        a = after if key is None else after.get(key)
        if a != b:
            diffs.append("%snow %s, before %s" % ("" if key is None else key + ": ", _show(a), _show(b)))
    return {"name": "%s equals its before-snapshot" % name, "passed": False,
            "detail": "%s differs: %s" % (name, "; ".join(diffs))}
