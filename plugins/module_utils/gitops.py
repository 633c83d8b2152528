# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GitOps overlay bookkeeping, pure apart from asking whether a file exists.

Which files the overlay step writes for the unguarded workloads, and what a rollback
needs to put each of them back (its prior content, or its absence)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

OVERLAY_FILES = ("kustomization.yaml", "patch-affinity.yaml")


def overlay_workloads(unguarded, primary):
    """The unguarded workloads (placement audit rows) the primary-lane overlay can guard.

    Left out, for a person to pin by hand (the audit's report names every unguarded one):
    a bare Pod (no template to patch); one whose own spec keeps it off ``primary`` (bound
    or pinned to the secondary: the lane affinity would leave it no node); and one with
    required node affinity of its own (the overlay's nodeSelectorTerms would replace its
    terms, as a strategic merge replaces that list)."""
    return [w for w in unguarded or []
            if w.get("kind") != "Pod" and w.get("pinning") not in ("affinity", "nodeName")
            and primary not in (w.get("kept_off") or {})]


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


# Runbook 002's PR template: one overlay per stage, the second layered on the first.
STAGE_OVERLAYS = {
    "1": ("primary-only", "patch-topology-and-anti-affinity.yaml"),
    "2": ("dual-lane", "patch-toleration-and-affinity.yaml"),
}


def _replacing(patch):
    """Mark every map value of the patch's pod spec that has no removed key (None) with
    ``$patch: replace``: workload_fields sets such a field whole, and the overlay must do
    the same (stage 2's required anti-affinity replaces stage 1's preferred one instead of
    being merged into it). A map with a removed key (a nodeSelector pin) stays a merge."""
    pod = patch.get("spec", {}).get("template", {}).get("spec", {})
    for key, value in pod.items():
        if isinstance(value, dict) and None not in value.values():
            pod[key] = dict(value, **{"$patch": "replace"})
    return patch


def stage_overlay_files(repo, overlay_dir, base_dir, workload, stage, patch):
    """The two files of a strategy A stage's overlay: [{dest, content}].

    ``patch`` is the stage's fields as a strategic-merge patch (fields.fields_patch).
    Stage 1's overlay (``<app>/primary-only``) builds on the app's base; stage 2's
    (``<app>/dual-lane``) on stage 1's, as the runbook's commits 1 and 2 do."""
    import yaml  # on the controller, where filters run

    folder, patch_file = STAGE_OVERLAYS[stage]
    here = os.path.join(repo, overlay_dir, workload, folder)
    below = (os.path.join(repo, base_dir, workload) if stage == "1"
             else os.path.join(repo, overlay_dir, workload, STAGE_OVERLAYS["1"][0]))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(below, here)],
        "patches": [{"path": patch_file, "target": {"kind": patch["kind"], "name": workload}}],
    }
    header = ("# Rendered by homelab.k8s_ha (runbook 002, strategy A, stage %s) for %s.\n"
              "# Code only: review, merge and sync with Argo CD; no kubectl apply.\n" % (stage, workload))
    # a JSON round trip makes plain str of the template engine's string types for the dumper
    files = []
    for name, obj in (("kustomization.yaml", kustomization), (patch_file, _replacing(patch))):
        text = yaml.safe_dump(json.loads(json.dumps(obj)), default_flow_style=False, sort_keys=False)
        files.append({"dest": os.path.join(here, name), "content": header + text})
    return files
