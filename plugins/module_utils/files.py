# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a set of file changes in the GitOps checkout does, decided without touching the
disk: each change's content before and after. The action plugin ``gitops_files`` reads
the files, asks this module, and writes. Pure: unit tested without a filesystem."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os


def op_kind(op):
    """Which change one entry asks for, or a message naming what is wrong with it.

    An entry has ``path`` (``dest`` is taken as its alias) and exactly one of
    ``content`` (the file's whole text), ``state: absent`` (remove the file) or ``block``
    with ``marker`` (a marked block in the file, as ansible.builtin.blockinfile keeps one)."""
    if not isinstance(op, dict):
        return None, "each entry of files must be a dict, got %r" % (op,)
    path = op.get("path", op.get("dest"))
    if not path or not isinstance(path, str):
        return None, "files: an entry without path: %r" % (sorted(op),)
    kinds = [k for k, present in (("content", "content" in op), ("absent", op.get("state") == "absent"),
                                  ("block", "block" in op)) if present]
    if op.get("state") not in (None, "present", "absent"):
        return None, "files[%s].state: %r; allowed: present, absent" % (path, op.get("state"))
    if len(kinds) != 1:
        return None, ("files[%s]: give exactly one of content, state: absent, or block with marker"
                      % path)
    if kinds[0] == "block" and "{mark}" not in str(op.get("marker") or ""):
        return None, "files[%s].marker: must contain {mark} (BEGIN and END replace it)" % path
    return kinds[0], None


def inside(path, root):
    """Whether ``path`` is ``root`` or below it, after normalising both (no ``..`` escape)."""
    root = os.path.normpath(os.path.abspath(root))
    path = os.path.normpath(os.path.abspath(path))
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def with_block(text, marker, block):
    """``text`` (None: no file) with the block between ``marker``'s BEGIN and END lines set
    to ``block``: the lines between an existing pair replaced, otherwise appended at the end.
    What ansible.builtin.blockinfile writes with its defaults (insertafter EOF, no extra
    blank lines)."""
    lines = (text or "").splitlines(True)
    begin = marker.replace("{mark}", "BEGIN") + "\n"
    end = marker.replace("{mark}", "END") + "\n"
    if block and not block.endswith("\n"):
        block += "\n"
    new = [begin] + block.splitlines(True) + [end] if block else []
    n0 = n1 = None
    for i, line in enumerate(lines):
        if line == begin:
            n0 = i
        if line == end:
            n1 = i
    if n0 is None or n1 is None:
        n0 = len(lines)
    elif n0 < n1:
        lines[n0:n1 + 1] = []
    else:
        lines[n1:n0 + 1] = []
        n0 = n1
    if n0 > 0 and not lines[n0 - 1].endswith("\n"):
        lines[n0 - 1] += "\n"
    lines[n0:n0] = new
    return "".join(lines)


def plan_files(ops, read):
    """[{path, before, after}] for ``ops`` (checked with op_kind first), ``read(path)``
    giving a file's text or None when it does not exist. ``after`` is None for a removal.
    A path given twice sees the first change's result."""
    state = {}
    out = []
    for op in ops:
        kind, _error = op_kind(op)
        path = op.get("path", op.get("dest"))
        before = state[path] if path in state else read(path)
        if kind == "content":
            after = op["content"] if isinstance(op["content"], str) else str(op["content"])
        elif kind == "absent":
            after = None
        else:
            after = with_block(before, op["marker"], str(op["block"] or ""))
        state[path] = after
        out.append({"path": path, "before": before, "after": after})
    return out


def results(planned):
    """Each change as a registered loop result of a file task would show it (``item.dest``,
    ``changed``, ``diff`` with ``before`` and ``after``), for plan.file_plan_items."""
    return [{"item": {"dest": p["path"]}, "changed": p["before"] != p["after"],
             "diff": {"before": p["before"] or "", "after": p["after"] if p["after"] is not None else {"state": "absent"},
                      "before_header": p["path"], "after_header": p["path"]}}
            for p in planned]


def written(planned):
    """What the rollback needs of every file changed: path, whether it existed, its prior
    content: the ``files`` a run's rollback.json records."""
    out, seen = [], set()
    for p in planned:
        if p["before"] != p["after"] and p["path"] not in seen:
            seen.add(p["path"])  # a path changed twice: its content before the first change
            out.append({"path": p["path"], "existed": p["before"] is not None, "content": p["before"] or ""})
    return out


def restore_files(records):
    """The gitops_files entries that put back what ``written`` recorded: the prior
    content where the file existed, its removal where the run created it."""
    return [{"path": r["path"], "content": r.get("content") or ""} if r.get("existed")
            else {"path": r["path"], "state": "absent"} for r in records or []]
