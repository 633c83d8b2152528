#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: evidence_folder
short_description: Write a run's evidence folder in one step
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
extends_documentation_fragment:
  - homelab.k8s_ha.controller_action
description:
  - Writes every file of one evidence folder (the JSON records and C(report.md)) on the
    controller, in one task. The files go into a temporary folder next to O(path), which
    is then renamed to O(path). A reader never sees half a folder, and a run pays one task
    for its evidence instead of one module round trip per file.
  - The role C(homelab.k8s_ha.evidence) calls it; playbooks do not need to.
  - The folder is written in check mode too. It records the run; it changes nothing the
    playbook manages. The result is never C(changed).
options:
  path:
    description:
      - The folder to create; it must not exist yet. A relative path is relative to the
        directory ansible-playbook was started from.
    type: path
    required: true
  json:
    description: File name to data; each is written as indented JSON with sorted keys.
    type: dict
    default: {}
  text:
    description: File name to text, written as it is.
    type: dict
    default: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The folder is written in check mode too; it is the record of the run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - File names are plain names (letters, digits, C(.), C(_), C(-)), each at most once.
  - The folder gets mode C(0750) and its files C(0640).
"""

EXAMPLES = r"""
- name: Write the evidence of this run
  homelab.k8s_ha.evidence_folder:
    path: "{{ evidence_dir }}"
    json:
      plan.json: "{{ evidence_plan }}"
      rollback.json: "{{ evidence_rollback }}"
    text:
      report.md: "{{ lookup('ansible.builtin.template', 'report.md.j2') }}"
"""

RETURN = r"""
path:
  description: The folder written.
  returned: success
  type: str
files:
  description: The names of the files written, sorted.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # The work is done by the action plugin of the same name, on the controller.
    module = AnsibleModule(argument_spec=dict(
        path=dict(type="path", required=True), json=dict(type="dict", default={}),
        text=dict(type="dict", default={})), supports_check_mode=True)
    module.fail_json(msg="evidence_folder runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
