# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the health checks after a stage (logic in module_utils/health.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.homelab.k8s_ha.plugins.module_utils.health import parse_probe


def http_probe_errors(probes, field="http_probe", per_workload=False, workloads=None):
    """The input errors of HTTP probes, each naming its field; [] when all are valid.
    ``probes`` is one probe (a mapping or a ``service:port/path`` string), or with
    ``per_workload`` a mapping of ``namespace/workload`` to one, whose keys must be among
    ``workloads`` when that list is given."""
    if not per_workload:
        items = [(field, probes)]
    elif not isinstance(probes, dict):
        return ["%s: a mapping of namespace/workload to a probe; got %r" % (field, probes)]
    else:
        items = [("%s[%s]" % (field, key), value) for key, value in sorted(probes.items())]
    errors = []
    if per_workload and workloads is not None:
        errors += ["%s: %s is not a workload of the drill; they are: %s" % (field, key, ", ".join(workloads) or "none")
                   for key in sorted(probes) if key not in workloads]
    for name, value in items:
        try:
            parse_probe(value, name)
        except ValueError as e:
            errors.append("%s" % e)
    return errors


def health_apps(workloads, probes=None):
    """app_health_info's ``apps`` for workloads (objects with ``spec.selector.matchLabels``),
    each with its probe from ``probes`` (``namespace/name`` to a probe)."""
    probes = probes or {}
    out = []
    for w in workloads:
        ref = "%s/%s" % (w["metadata"]["namespace"], w["metadata"]["name"])
        app = {"namespace": w["metadata"]["namespace"], "name": ref,
               "selector": ((w.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}}
        if probes.get(ref):
            app["http_probe"] = probes[ref]
        out.append(app)
    return out


class FilterModule(object):
    def filters(self):
        return {
            "http_probe_errors": http_probe_errors,
            "health_apps": health_apps,
        }
