# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the GitOps overlay step (logic in module_utils/gitops.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.fields import fields_patch
from ansible_collections.homelab.k8s_ha.plugins.module_utils.files import restore_files
from ansible_collections.homelab.k8s_ha.plugins.module_utils.gitops import (
    app_targets,
    overlay_targets,
    overlay_workloads,
    stage_overlay_files,
)


class FilterModule(object):
    def filters(self):
        return {"overlay_targets": overlay_targets, "overlay_workloads": overlay_workloads, "app_targets": app_targets,
                "stage_overlay_files": stage_overlay_files,
                "fields_patch": fields_patch, "restore_files": restore_files}
