# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure LINSTOR rules for runbook 004's guard: no I/O here.

The inputs are the controller's REST shapes as python-linstor returns them
(``data_v1`` of its responses): ``GET /v1/view/resources`` rows and ``GET /v1/nodes``
rows. The rules are those of the official client (linstor-client):

- a resource row is **faulty** (``linstor resource list --faulty``) when its state is
  not green or a DRBD connection is not connected. Green volume disk states:
  UpToDate, Created, Attached, an intentional Diskless (the resource has the
  DISKLESS flag), TieBreaker; a volume without a DRBD layer counts as Created. A
  resource marked DELETE/DRBD_DELETE shows as DELETING, an INACTIVE one as INACTIVE,
  one without volumes as Unknown: all not green.
- the cluster is **settled** when no row is Connecting, syncing (a replication state
  Sync*, or a done percentage below 100) or DELETING.
- a node needs a **restore** only when it carries EVACUATE or EVICTED (the controller
  refuses a restore otherwise: "neither evicted nor evacuated").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MASK_ERROR = 0xC000000000000000
MASK_WARN = 0x8000000000000000
GREEN_DISK_STATES = ("UpToDate", "Created", "Attached")
RED_DISK_STATES = ("Inconsistent", "Failed", "To: Creating", "To: Attachable", "To: Attaching")
RESTORE_FLAGS = ("EVACUATE", "EVICTED")
DELETE_FLAGS = ("DELETE", "DRBD_DELETE")
ACTIONS = ("check", "evacuate", "restore", "settle")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


# ---- replies -----------------------------------------------------------------------------
def is_error(reply):
    """The error bit of an ApiCallResponse's ``ret_code`` (a signed 64-bit value)."""
    code = reply.get("ret_code", 0) if isinstance(reply, dict) else 0
    return code & MASK_ERROR == MASK_ERROR


def reply_text(reply):
    """One line from a reply: its message, then cause and correction when given."""
    parts = [reply.get("message") or "(no message)"]
    for key in ("cause", "correction"):
        if reply.get(key):
            parts.append("%s: %s" % (key, reply[key]))
    return "; ".join(parts)


def reply_errors(replies):
    """The error lines of a list of replies (empty when none is an error)."""
    return [reply_text(r) for r in replies or [] if is_error(r)]


# ApiConsts.WARN_NOT_EVACUATING (1020 | MASK_WARN): CtrlNodeApiCallHandler.evacuateNodeInTrasaction
# answers it, with HTTP 200, for each resource no other node can take ("Resource '<rsc>' cannot
# be evacuated as no available storage pool was found"). The node is flagged EVACUATE all the
# same, and such a resource never leaves it.
WARN_NOT_EVACUATING = MASK_WARN | 1020


def not_evacuating(replies):
    """The messages of the replies that say a resource will not be evacuated. The same
    warning about a snapshot ("Snapshot '<s>' of resource ...") is left out: a snapshot
    left behind does not keep the node's resource rows, which the wait counts."""
    out = []
    for r in replies or []:
        code = (r.get("ret_code", 0) if isinstance(r, dict) else 0) & 0xFFFFFFFFFFFFFFFF
        text = (r.get("message") or "") if isinstance(r, dict) else ""
        # the level bits, and the code in the low bits (object and operation bits aside)
        if code & MASK_ERROR == MASK_WARN and code & 0x7FFF == 1020 and not text.startswith("Snapshot "):
            out.append(reply_text(r))
    return out


# ---- durations ---------------------------------------------------------------------------
def duration_seconds(value, name="timeout"):
    """Seconds from an int or a Go-style duration (``45m``, ``1h30m``, ``90s``).

    Raises ValueError naming ``name`` and the accepted forms."""
    if isinstance(value, bool):
        raise ValueError("%s: %r is not a duration; use seconds (2700) or 45m, 1h30m, 90s" % (name, value))
    if isinstance(value, int):
        seconds = value
    else:
        text = ("%s" % value).strip()
        if text.isdigit():
            seconds = int(text)
        else:
            m = _DURATION.match(text)
            if not text or not m or not any(m.groups()):
                raise ValueError("%s: %r is not a duration; use seconds (2700) or 45m, 1h30m, 90s"
                                 % (name, value))
            h, mi, s = (int(g or 0) for g in m.groups())
            seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise ValueError("%s: %r must be more than 0 seconds" % (name, value))
    return seconds


# ---- resource rows -----------------------------------------------------------------------
def _volume_state(volume, rsc_flags):
    """(text, green) of one volume, as the official client colours it."""
    layers = volume.get("layer_data_list") or []
    if not layers or layers[0].get("type") != "DRBD":
        return "Created", True
    disk = (volume.get("state") or {}).get("disk_state")
    if not disk:
        return "Unknown", False
    if disk == "DUnknown":
        return "Unknown", False
    if disk == "Diskless":
        if "DISKLESS" not in rsc_flags:
            return "Diskless", False  # lost its disk
        if "TIE_BREAKER" in rsc_flags:
            return "TieBreaker", True
        return "Diskless", True
    return disk, disk in GREEN_DISK_STATES


def _connections(resource):
    drbd = (resource.get("layer_object") or {}).get("drbd") or {}
    return drbd.get("connections") or {}


def resource_state(resource):
    """The row the official client prints: state text, green or not, failed connections."""
    flags = resource.get("flags") or []
    if any(f in flags for f in DELETE_FLAGS):
        state, green = "DELETING", False
    elif "INACTIVE" in flags:
        state, green = "INACTIVE", False
    else:
        state, green = "Unknown", False
        for volume in resource.get("volumes") or []:
            state, green = _volume_state(volume, flags)
            if "EVACUATE" in flags:
                state += ", Evacuating"
            if (resource.get("state") or {}).get("in_use"):
                state += ", InUse"
            if not green:
                break
    failed = {}
    if state != "Unknown":
        for peer, conn in sorted(_connections(resource).items()):
            if not conn.get("connected"):
                failed.setdefault(conn.get("message") or "not connected", []).append(peer)
    return {"resource": resource.get("name"), "node": resource.get("node_name"),
            "state": state, "green": green,
            "connections": ["%s(%s)" % (msg, ",".join(peers)) for msg, peers in sorted(failed.items())]}


def faulty_rows(resources):
    """The rows ``linstor resource list --faulty`` shows."""
    rows = []
    for r in resources or []:
        row = resource_state(r)
        if not row["green"] or row["connections"]:
            del row["green"]
            rows.append(row)
    return rows


def _syncing(volume):
    st = volume.get("state") or {}
    found = []
    repl = dict(st.get("replication_states") or {})
    if st.get("replication_state"):
        repl[""] = {"replication_state": st["replication_state"], "done_percentage": st.get("done_percentage")}
    for peer, rs in sorted(repl.items()):
        name = rs.get("replication_state") or ""
        pct = rs.get("done_percentage")
        if name.startswith("Sync") or (pct is not None and pct < 100):
            found.append("%s%s%s" % (name or "Sync", "" if pct is None else " %.1f%%" % pct,
                                     " with %s" % peer if peer else ""))
    return found


def unsettled_rows(resources):
    """Rows still moving: Connecting, Sync* (SyncTarget, SyncSource) or DELETING."""
    rows = []
    for r in resources or []:
        why = []
        flags = r.get("flags") or []
        if any(f in flags for f in DELETE_FLAGS):
            why.append("DELETING")
        for peer, conn in sorted(_connections(r).items()):
            if not conn.get("connected") and (conn.get("message") or "").startswith("Connecting"):
                why.append("Connecting to %s" % peer)
        for v in r.get("volumes") or []:
            why.extend(_syncing(v))
        if why:
            rows.append({"resource": r.get("name"), "node": r.get("node_name"), "states": why})
    return rows


def rows_on(resources, node, pool):
    """The resource rows of ``node`` that hold a volume in storage pool ``pool``."""
    rows = []
    for r in resources or []:
        if r.get("node_name") != node:
            continue
        if any(v.get("storage_pool_name") == pool for v in r.get("volumes") or []):
            rows.append({"resource": r.get("name"), "node": node, "state": resource_state(r)["state"]})
    return rows


# ---- nodes -------------------------------------------------------------------------------
def find_node(nodes, name):
    for n in nodes or []:
        if n.get("name") == name:
            return n
    return None


def node_errors(nodes, name, field="node"):
    """A message when ``name`` is not a LINSTOR node, naming the known ones."""
    if find_node(nodes, name) is not None:
        return None
    known = sorted(n.get("name", "?") for n in nodes or [])
    return "%s: %r is not a LINSTOR node; known nodes: %s" % (field, name, ", ".join(known) or "none")


def restore_needed(node):
    return any(f in (node.get("flags") or []) for f in RESTORE_FLAGS)


def evacuate_needed(node):
    """Send ``node evacuate`` unless the node is already evacuating (then only wait)."""
    return "EVACUATE" not in (node.get("flags") or [])


# ---- controller discovery ----------------------------------------------------------------
def selector_matches(selector_text, labels):
    """``k=v[,k=v]`` (the runbook's linstorControllerSelector) against ``labels``."""
    for part in (selector_text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or (labels or {}).get(key.strip()) != value.strip():
            return False
    return True


def controller_url(services, namespace, selector_text, name="linstor-controller"):
    """The REST URL of the controller's Service: the piraeus Service ``name``, else a
    Service whose selector carries ``selector_text``; its port 3370 (or its port named
    ``api``/``rest-api``/``http``, else its first). Returns (url, error)."""
    chosen = None
    for svc in services or []:
        if svc["metadata"]["name"] == name:
            chosen = svc
            break
    if chosen is None:
        for svc in services or []:
            if selector_matches(selector_text, (svc.get("spec") or {}).get("selector") or {}) and \
                    (svc.get("spec") or {}).get("selector"):
                chosen = svc
                break
    if chosen is None:
        return None, ("controller_url: not given, and namespace %s has no Service %s nor one selecting %s;"
                      " give controller_url, or set linstor_namespace / controller_selector"
                      % (namespace, name, selector_text))
    ports = (chosen.get("spec") or {}).get("ports") or []
    port = None
    for p in ports:
        if p.get("port") == 3370:
            port = p
    if port is None:
        port = next((p for p in ports if p.get("name") in ("api", "rest-api", "http")), None)
    if port is None and ports:
        port = ports[0]
    if port is None:
        return None, "controller_url: Service %s/%s has no port" % (namespace, chosen["metadata"]["name"])
    scheme = "https" if port.get("port") == 3371 or port.get("name") == "https" else "http"
    return "%s://%s.%s.svc:%s" % (scheme, chosen["metadata"]["name"], namespace, port["port"]), None
