"""longhorn_settings against settings.longhorn.io objects on the real API server.

The Setting objects start as a fresh Longhorn 1.10 stores them (default-replica-count as
per-engine JSON). Longhorn's webhook, which would normalise a written "2" into
{"v1":"2","v2":"2"}, is imitated here with a patch."""

import json
from pathlib import Path

import pytest

from observe import audit_size, writes

PLAYBOOK = "tests/integration/playbooks/longhorn_settings.yml"
CRDS = Path(__file__).resolve().parents[1] / "fixtures" / "longhorn-crds"
FRESH = {
    "default-replica-count": '{"v1":"3","v2":"3"}',
    "replica-soft-anti-affinity": "true",
    "replica-auto-balance": "best-effort",
    "replica-replenishment-wait-interval": "300",
    "concurrent-replica-rebuild-per-node-limit": "5",
    "node-drain-policy": "block-if-contains-last-replica",
}
RUNBOOK = {
    "default-replica-count": 2,
    "replica-soft-anti-affinity": False,
    "replica-auto-balance": "disabled",
    "replica-replenishment-wait-interval": 600,
    "concurrent-replica-rebuild-per-node-limit": 1,
}


def stored(c):
    return {s["metadata"]["name"]: s.get("value")
            for s in c.get_json("settings.longhorn.io", "-n", "longhorn-system")["items"]}


@pytest.fixture
def longhorn(two_node):
    c = two_node
    c.kubectl("apply", "--server-side", "-f", str(CRDS))
    c.kubectl("wait", "--for=condition=Established", "crd/settings.longhorn.io", "--timeout=60s")
    items = [{"apiVersion": "longhorn.io/v1beta2", "kind": "Setting",
              "metadata": {"name": k, "namespace": "longhorn-system"}, "value": v}
             for k, v in FRESH.items()]
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    yield c
    c.kubectl("delete", "settings.longhorn.io", "--all", "-n", "longhorn-system", "--wait=true")


def test_check_apply_idempotent_and_rollback(longhorn, run_playbook):
    c = longhorn
    offset = audit_size(c)
    check = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": RUNBOOK}}, check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert check.result["changed"] is True
    assert sorted(check.result["diff"]["after"]) == sorted(RUNBOOK)  # all five differ
    assert stored(c) == FRESH and writes(c, offset, "settings") == []

    apply = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": RUNBOOK}})
    assert apply.rc == 0 and apply.result["changed"] is True
    assert apply.result["rollback"] == {k: FRESH[k] for k in RUNBOOK}
    now = stored(c)
    assert now["default-replica-count"] == "2" and now["replica-soft-anti-affinity"] == "false"
    assert now["replica-replenishment-wait-interval"] == "600"
    assert now["node-drain-policy"] == FRESH["node-drain-policy"]  # not named: untouched

    # what Longhorn's webhook does to the stored value
    c.kubectl("patch", "settings.longhorn.io", "default-replica-count", "-n", "longhorn-system",
              "--type=merge", "-p", json.dumps({"value": '{"v1":"2","v2":"2"}'}))
    again = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": RUNBOOK}})
    assert again.rc == 0 and again.result["changed"] is False

    undo = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": apply.result["rollback"]}})
    assert undo.rc == 0 and undo.result["changed"] is True
    assert stored(c) == dict(FRESH, **{"default-replica-count": '{"v1":"3","v2":"3"}'})


@pytest.mark.parametrize("settings, message", [
    ({"default-replica-count": 25}, "default-replica-count: 25 is out of range; allowed: 1 to 20"),
    ({"replica-auto-balance": "always"}, "allowed: disabled, least-effort, best-effort"),
    ({"replica-count": 2}, "replica-count: not a setting this module knows"),
])
def test_bad_values_fail_before_any_write(longhorn, run_playbook, settings, message):
    c = longhorn
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": settings},
                                                "settings_may_fail": True})
    assert run.result["failed"] is True and message in run.result["msg"]
    assert writes(c, offset, "settings") == [] and stored(c) == FRESH
