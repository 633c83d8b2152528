# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the operator front ends, AWX and Semaphore (logic in module_utils/operate.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.k8s_ha.plugins.module_utils import operate


def _filter(name, errors=(KeyError, TypeError, ValueError, AttributeError)):
    """operate.<name> as a filter: its errors become AnsibleFilterError "<name>: <why>"."""
    function = getattr(operate, name)

    def run(*args):
        try:
            return function(*args)
        except errors as e:
            raise AnsibleFilterError("%s: %s" % (name, e))

    run.__name__ = name
    run.__doc__ = function.__doc__
    return run


# --- Semaphore ---
# the template payloads of operate/catalog.yml; {create, change, unchanged, differences} of
# payloads against the project's templates; one line per failed write of registered uri
# results (no request data); the settings ids that name no object of the project; the
# schedule bodies and their sync against the project's schedules
semaphore_templates = _filter("semaphore_templates")
semaphore_sync_plan = _filter("semaphore_sync_plan")
semaphore_write_errors = _filter("semaphore_write_errors", (TypeError, AttributeError))
semaphore_dangling = _filter("semaphore_dangling", (TypeError, AttributeError))
semaphore_schedules = _filter("semaphore_schedules")
semaphore_schedule_sync = _filter("semaphore_schedule_sync")

# --- AWX ---
# the awx.awx module parameters of the catalog's AWX objects
awx_objects = _filter("awx_objects")


class FilterModule(object):
    def filters(self):
        return {"semaphore_templates": semaphore_templates, "semaphore_sync_plan": semaphore_sync_plan,
                "semaphore_write_errors": semaphore_write_errors, "semaphore_dangling": semaphore_dangling,
                "semaphore_schedules": semaphore_schedules, "semaphore_schedule_sync": semaphore_schedule_sync,
                "awx_objects": awx_objects}
