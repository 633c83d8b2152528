# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The rollout lock option of the modules that wait long (runbook 004)."""

    DOCUMENTATION = r"""
options:
  lock:
    description:
      - The rollout lock this run holds (a Lease taken with M(homelab.k8s_ha.cluster_lock)).
        It is renewed while the module waits; the module fails before doing anything when
        the lock is not its own, and stops waiting when it is lost.
    type: dict
    suboptions:
      name:
        description: The Lease's name.
        type: str
        required: true
      namespace:
        description: The Lease's namespace.
        type: str
        required: true
      holder:
        description: This run's holder identity.
        type: str
        required: true
      duration_seconds:
        description: The Lease's duration.
        type: int
        default: 300
"""
