# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the operator front ends, AWX and Semaphore (logic in module_utils/operate.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils import operate


# --- Semaphore ---
def semaphore_templates(catalog, settings):
    """The Semaphore template payloads of operate/catalog.yml (operate.semaphore_templates)."""
    try:
        return operate.semaphore_templates(catalog, settings)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise AnsibleFilterError("semaphore_templates: %s" % e)


def semaphore_sync_plan(desired, existing):
    """{create, change, unchanged, differences} of payloads against the project's templates."""
    try:
        return operate.semaphore_sync_plan(desired, existing)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise AnsibleFilterError("semaphore_sync_plan: %s" % e)


def semaphore_write_errors(results):
    """One line per failed template write of registered uri results (no request data)."""
    try:
        return operate.semaphore_write_errors(results)
    except (TypeError, AttributeError) as e:
        raise AnsibleFilterError("semaphore_write_errors: %s" % e)


def semaphore_dangling(results):
    """The settings ids that name no object of the project (operate.semaphore_dangling)."""
    try:
        return operate.semaphore_dangling(results)
    except (TypeError, AttributeError) as e:
        raise AnsibleFilterError("semaphore_dangling: %s" % e)


# --- AWX ---
def awx_objects(catalog, settings):
    """The awx.awx module parameters of the catalog's AWX objects (operate.awx_objects)."""
    try:
        return operate.awx_objects(catalog, settings)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise AnsibleFilterError("awx_objects: %s" % e)


class FilterModule(object):
    def filters(self):
        return {"semaphore_templates": semaphore_templates, "semaphore_sync_plan": semaphore_sync_plan,
                "semaphore_write_errors": semaphore_write_errors, "semaphore_dangling": semaphore_dangling,
                "awx_objects": awx_objects}
