# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change files of the GitOps checkout in one step, on the controller (module docs:
plugins/modules/gitops_files.py; the decisions: module_utils/files.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.homelab.k8s_ha.plugins.module_utils.files import (
    inside,
    op_kind,
    plan_files,
    results,
    written,
)


def _read(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _write(path, text):
    """Write ``text`` to ``path`` (mode 0644) through a temporary file renamed into place."""
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _remove(path, root):
    """Remove ``path`` and then its folders that the removal left empty, up to ``root``."""
    if os.path.lexists(path):
        os.remove(path)
    folder = os.path.dirname(path)
    while inside(folder, root) and os.path.normpath(folder) != os.path.normpath(root):
        try:
            os.rmdir(folder)
        except OSError:
            break
        folder = os.path.dirname(folder)


class ActionModule(ActionBase):
    """Every entry is checked (kind, inside O(root)) before anything is written. In check
    mode nothing is written; the diffs are returned either way."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("root", "files"))
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = self._task.args
        root = args.get("root")
        if not root or not isinstance(root, str):
            raise AnsibleActionFail("root: the GitOps checkout the files belong to is required")
        root = os.path.abspath(os.path.expanduser(root))
        ops = args.get("files")
        if ops is None:
            ops = []
        if not isinstance(ops, list):
            raise AnsibleActionFail("files must be a list, got %s" % type(ops).__name__)
        resolved = []
        for op in ops:
            _kind, error = op_kind(op)
            if error:
                raise AnsibleActionFail(error)
            given = op.get("path", op.get("dest"))
            # relative to where ansible-playbook was started, as a file task's path is
            path = os.path.abspath(os.path.expanduser(given))
            if not inside(path, root):
                raise AnsibleActionFail("files[%s].path: not inside root %s; nothing was written" % (given, root))
            resolved.append(dict(((k, v) for k, v in op.items() if k != "dest"), path=path))
        planned = plan_files(resolved, _read)
        if not self._task.check_mode:
            for p in planned:
                if p["before"] == p["after"]:
                    continue
                if p["after"] is None:
                    _remove(p["path"], root)
                else:
                    _write(p["path"], p["after"])
        changes = results(planned)
        result.update(changed=any(r["changed"] for r in changes), files=changes, written=written(planned))
        if self._task.diff:
            result["diff"] = [r["diff"] for r in changes if r["changed"]]
        return result
