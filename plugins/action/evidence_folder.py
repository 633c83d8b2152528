# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a run's evidence folder in one step, on the controller (module docs:
plugins/modules/evidence_folder.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.plugins.filter.core import to_nice_json

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _contents(json_files, text_files):
    """{file name: text}: the JSON documents as to_nice_json writes them, then the texts."""
    out = {}
    for group, render in ((json_files, lambda d: to_nice_json(d) + "\n"), (text_files, str)):
        if not isinstance(group, dict):
            raise AnsibleActionFail("json and text must be dicts of file name to content")
        for name, data in group.items():
            name = str(name)
            if not NAME.match(name) or name in out:
                raise AnsibleActionFail("evidence file name %r: a plain file name, once" % name)
            out[name] = render(data)
    return out


class ActionModule(ActionBase):
    """The folder (mode 0750, its files 0640, as the evidence has always been written) is
    built under a temporary name next to its final place and renamed into place, so a
    reader never sees half of it. Nothing is written to the cluster,
    so check mode writes it too: it is the record of the run."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("path", "json", "text"))
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        path = args.get("path")
        if not path:
            raise AnsibleActionFail("path: the evidence folder to write is required")
        # relative to where ansible-playbook was started, as evidence_root is
        path = os.path.abspath(os.path.expanduser(str(path)))
        contents = _contents(args.get("json") or {}, args.get("text") or {})
        if os.path.exists(path):
            raise AnsibleActionFail("%s exists already: every run gets a folder of its own" % path)
        parent = os.path.dirname(path)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", dir=parent)
        try:
            for name, text in contents.items():
                target = os.path.join(staging, name)
                with open(target, "w", encoding="utf-8") as f:
                    f.write(text)
                os.chmod(target, 0o640)
            os.chmod(staging, 0o750)
            os.rename(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        result.update(changed=False, path=path, files=sorted(contents))
        return result
