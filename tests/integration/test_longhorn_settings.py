"""longhorn_settings against the Longhorn simulator on the real API server.

The simulator's webhook stores default-replica-count as JSON per data engine, as
Longhorn 1.10 and later do, and refuses bad values with HTTP 422."""

import pytest

from observe import audit_size, writes

PLAYBOOK = "tests/integration/playbooks/modules.yml"
RUNBOOK = {
    "default-replica-count": 2,
    "replica-soft-anti-affinity": False,
    "replica-auto-balance": "disabled",
    "replica-replenishment-wait-interval": 600,
    "concurrent-replica-rebuild-per-node-limit": 1,
}


def test_check_apply_idempotent_and_rollback(longhorn, run_playbook):
    c, fresh = longhorn.cluster, longhorn.settings()
    offset = audit_size(c)
    check = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": RUNBOOK}}, check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert check.result["changed"] is True
    assert sorted(check.result["diff"]["after"]) == sorted(RUNBOOK)  # all five differ
    assert longhorn.settings() == fresh and writes(c, offset, "settings") == []

    apply = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": RUNBOOK}})
    assert apply.rc == 0 and apply.result["changed"] is True
    assert apply.result["rollback"] == {k: fresh[k] for k in RUNBOOK}
    assert len(writes(c, offset, "settings")) == 5
    now = longhorn.settings()
    # the webhook stored the count per data engine; the rest as written
    assert now["default-replica-count"] == '{"v1":"2","v2":"2"}'
    assert now["replica-soft-anti-affinity"] == "false"
    assert now["replica-replenishment-wait-interval"] == "600"
    assert now["node-drain-policy"] == fresh["node-drain-policy"]  # not named: untouched

    offset = audit_size(c)
    again = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": RUNBOOK}})
    assert again.rc == 0 and again.result["changed"] is False
    assert writes(c, offset, "settings") == []

    undo = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": apply.result["rollback"]}})
    assert undo.rc == 0 and undo.result["changed"] is True
    assert longhorn.settings() == fresh


def test_invalid_count_fails_with_the_webhooks_422_and_no_write(longhorn, run_playbook):
    c, fresh = longhorn.cluster, longhorn.settings()
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": {
        "replica-auto-balance": "disabled", "default-replica-count": 25}}, "may_fail": True})
    assert run.result["failed"] is True
    assert "default-replica-count: 25 is out of range; allowed: 1 to 20" in run.result["msg"]
    assert ("HTTP 422" in run.result["msg"] and "value 25 of setting default-replica-count is invalid: "
            "it should be between 1 and 20" in run.result["msg"])
    assert writes(c, offset, "settings") == [] and longhorn.settings() == fresh
    # the webhook saw it only as a dry run
    denied = [e for e in longhorn.history() if e["event"] == "webhook-denied"]
    assert denied and all(e["dry_run"] for e in denied)


@pytest.mark.parametrize("settings, message", [
    ({"replica-auto-balance": "always"}, "allowed: disabled, least-effort, best-effort"),
    ({"replica-count": 2}, "replica-count: not a setting this module knows"),
])
def test_bad_values_fail_before_any_write(longhorn, run_playbook, settings, message):
    c, fresh = longhorn.cluster, longhorn.settings()
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": settings},
                                                "may_fail": True})
    assert run.result["failed"] is True and message in run.result["msg"]
    assert writes(c, offset, "settings") == [] and longhorn.settings() == fresh


def test_a_refusal_of_longhorn_changes_nothing(longhorn, run_playbook):
    """A value our model accepts but Longhorn refuses (some settings cannot change while
    volumes are attached): every change is dry-run first, so none is written."""
    c, fresh = longhorn.cluster, longhorn.settings()
    longhorn.set_faults(refuse_settings=["replica-soft-anti-affinity"])
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": {
        "replica-auto-balance": "disabled", "replica-soft-anti-affinity": False}},
        "may_fail": True})
    assert run.result["failed"] is True
    assert "nothing was changed" in run.result["msg"]
    assert ("replica-soft-anti-affinity: HTTP 422" in run.result["msg"]
            and "cannot modify setting replica-soft-anti-affinity while volumes are attached"
            in run.result["msg"])
    assert writes(c, offset, "settings") == [] and longhorn.settings() == fresh
