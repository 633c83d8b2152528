# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over evidence folders (run on the controller, where the folders are)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os


def with_changes(folders, keys=("lane_changes", "files")):
    """The evidence folders whose rollback.json records changes under ``keys``, in order."""
    out = []
    for folder in folders:
        try:
            with open(os.path.join(folder, "rollback.json")) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and any(record.get(k) for k in keys):
            out.append(folder)
    return out


def plan_with_id(root, plan_id):
    """The plan (plan.json) with id ``plan_id`` of the newest evidence folder under
    ``root`` that has one, or {}: the plan a check run printed and a person approved."""
    try:
        folders = sorted(os.listdir(root), reverse=True)
    except OSError:
        return {}
    for folder in folders:
        try:
            with open(os.path.join(root, folder, "plan.json")) as f:
                plan = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(plan, dict) and plan.get("id") == plan_id:
            return dict(plan, folder=os.path.join(root, folder))
    return {}


class FilterModule(object):
    def filters(self):
        return {"with_changes": with_changes, "plan_with_id": plan_with_id}
