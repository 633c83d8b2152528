# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitOps overlay bookkeeping, pure apart from asking whether a file exists.

Which files the overlay step writes for the unguarded workloads, and what a rollback
needs to put each of them back (its prior content, or its absence)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

OVERLAY_FILES = ("kustomization.yaml", "patch-affinity.yaml")


def overlay_targets(workloads, repo, overlay_dir):
    """The overlay files of every workload: {workload, template, dest}."""
    return [{"workload": w, "template": f + ".j2",
             "dest": os.path.join(repo, overlay_dir, w["name"], f)}
            for w in workloads for f in OVERLAY_FILES]


def app_targets(workloads, repo, apps_dir, isfile=os.path.isfile):
    """The Argo CD Application file of every workload that has one: {workload, dest}."""
    out = []
    for w in workloads:
        app = os.path.join(repo, apps_dir, w["name"] + "-app.yaml")
        if isfile(app):
            out.append({"workload": w, "dest": app})
    return out


def written_files(results, stats):
    """What the rollback needs of every file the apply changed: path, existed, content.

    ``results``: registered results of the file tasks (their ``item`` has ``dest``);
    ``stats``: registered ``stat`` results taken before the writes."""
    existed = dict((s["item"]["dest"], s["stat"]["exists"]) for s in stats
                   if not s.get("skipped"))
    out = []
    for r in results:
        if not r.get("changed"):
            continue
        path = r["item"]["dest"]
        diff = r.get("diff") or {}
        if isinstance(diff, list):
            diff = diff[0] if diff else {}
        was = existed.get(path, True)
        out.append({"path": path, "existed": was,
                    "content": (diff.get("before") or "") if was else ""})
    return out
