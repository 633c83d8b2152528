# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for plans: plan_items, plan (id, items and report at once), plan_id, plan_report,
per_definition (one kubernetes.core.k8s call's results as a loop's) (logic in
module_utils/plan.py),
and lines, which joins a report's lines with real line breaks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils.plan import (
    file_plan_items,
    per_definition,
    plan_differences,
    plan_id,
    plan_items,
    plan_report,
    snapshot_check,
)


def _plan_items(results, kind="Node", module="homelab.k8s_ha.lane_node"):
    try:
        return plan_items(results, kind, module)
    except (KeyError, ValueError, TypeError) as e:
        raise AnsibleFilterError("plan_items: %s" % e)


def _file_plan_items(results, root, module="ansible.builtin.template"):
    try:
        return file_plan_items(results, root, module)
    except (KeyError, ValueError, TypeError, IndexError) as e:
        raise AnsibleFilterError("file_plan_items: %s" % e)


def _per_definition(registered, definitions):
    try:
        return per_definition(registered, definitions)
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise AnsibleFilterError("per_definition: %s" % e)


def _plan(items, extra=None):
    """The plan of ``items``: ``{id, items, report}`` (plus ``extra``'s keys), from one
    evaluation of the items' template instead of one per key."""
    if not isinstance(items, list):
        raise AnsibleFilterError("plan: items must be a list, got %s" % type(items).__name__)
    if extra is not None and not isinstance(extra, dict):
        raise AnsibleFilterError("plan: extra must be a dict, got %s" % type(extra).__name__)
    try:
        return dict(extra or {}, id=plan_id(items), items=items, report=plan_report(items))
    except (KeyError, ValueError, TypeError) as e:
        raise AnsibleFilterError("plan: %s" % e)


def _lines(value):
    """A report (a list of lines) as one text with real line breaks.

    ``join('\\n')`` inside a YAML block scalar hands Jinja a backslash and an ``n`` (Ansible
    escapes backslashes in templates it reads from YAML), and the text a person reads
    shows a literal ``\\n``. A string is returned as it is."""
    if isinstance(value, (list, tuple)):
        return "\n".join("%s" % (line,) for line in value)
    return "%s" % (value,)


def _snapshot_check(item, after):
    """``{key, value}`` of a before-snapshot (dict2items) against ``after[key]``."""
    try:
        return snapshot_check(item["key"], item["value"], after.get(item["key"]))
    except (KeyError, TypeError, AttributeError) as e:
        raise AnsibleFilterError("snapshot_check: %s" % e)


class FilterModule(object):
    def filters(self):
        return {"plan_items": _plan_items, "file_plan_items": _file_plan_items,
                "plan": _plan, "plan_id": plan_id, "plan_report": plan_report, "lines": _lines,
                "snapshot_check": _snapshot_check, "plan_differences": plan_differences,
                "per_definition": _per_definition}
