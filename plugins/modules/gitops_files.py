#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gitops_files
short_description: Change files of the GitOps checkout in one step
version_added: 0.1.0
author:
  - homelab.k8s_ha maintainers (!UNKNOWN)
extends_documentation_fragment:
  - homelab.k8s_ha.controller_action
description:
  - Writes, removes or updates a marked block in files of the GitOps checkout, on the
    controller, in one task. The roles use it for runbook 000's overlays, runbook 002's
    stage overlays and migration doc, and the rollbacks that put those files back; a run
    pays one task for its files instead of a module round trip per file, per folder and
    per C(stat).
  - Every entry is checked before anything is written. A path outside O(root) fails the
    task and writes nothing.
  - A file is written through a temporary file renamed into place (mode C(0644)); its
    folders are created (C(0755)) as needed. A removal also removes the folders it left
    empty, up to O(root).
options:
  root:
    description: The GitOps checkout. Every path must be inside it.
    type: path
    required: true
  files:
    description:
      - The changes, in order. Each has O(files[].path) and exactly one of
        O(files[].content), O(files[].state=absent), or O(files[].block) with
        O(files[].marker).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - The file, inside O(root). A relative path is relative to the directory
            ansible-playbook was started from. C(dest) is an alias.
        type: path
        required: true
      content:
        description: The file's whole text.
        type: str
      state:
        description: C(absent) removes the file.
        type: str
        choices: [present, absent]
      block:
        description:
          - The text of a marked block. The lines between the block's markers are
            replaced; without them the block is appended at the end of the file (created
            if missing), as M(ansible.builtin.blockinfile) does with its defaults.
        type: str
      marker:
        description: The marker line; C({mark}) becomes C(BEGIN) and C(END).
        type: str
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
"""

EXAMPLES = r"""
- name: Write a stage's overlay and record the stage in the migration doc
  homelab.k8s_ha.gitops_files:
    root: "{{ gitops_checkout }}"
    files:
      - path: "{{ gitops_checkout }}/apps/overlays/primary-only/web/kustomization.yaml"
        content: "{{ kustomization }}"
      - path: "{{ gitops_checkout }}/docs/runbooks/migrations/web-2026-12-04.md"
        marker: "<!-- {mark} stage 1 -->"
        block: "{{ stage_notes }}"
  register: written
"""

RETURN = r"""
files:
  description:
    - Each entry as a registered loop result of a file task shows it, in the order given.
    - C(item.dest) is the path, C(changed) whether it changes, C(diff.before) and
      C(diff.after) its text before and after (for a removal C(diff.after) is a dict whose
      C(state) is C(absent)).
  returned: always
  type: list
  elements: dict
written:
  description:
    - What a rollback needs of every file that changed, once per path, in order.
    - C(path), C(existed) (whether it existed before), C(content) (its text before).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    # The work is done by the action plugin of the same name, on the controller.
    module = AnsibleModule(argument_spec=dict(
        root=dict(type="path", required=True), files=dict(type="list", elements="dict", default=[])),
        supports_check_mode=True)
    module.fail_json(msg="gitops_files runs as an action plugin on the controller")


if __name__ == "__main__":
    main()
