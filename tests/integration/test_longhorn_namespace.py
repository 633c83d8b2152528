"""A Longhorn namespace that does not exist, given to longhorn_settings or
longhorn_volume_replicas, fails naming the option and the namespace, with no write. Run as
the core-platform family's ServiceAccount: rbac/core-platform.yml lets it get the Namespace
(the one read made when no Longhorn object is found), or the message would be a 403."""

import pytest

from observe import OPERATOR_USERS, audit_entries, audit_size, writes

PLAYBOOK = "tests/integration/playbooks/modules.yml"
MESSAGE = ("namespace: no namespace longhorn; give the namespace Longhorn is installed in "
           "(longhorn-system by default; kubectl get settings.longhorn.io -A shows it)")


@pytest.fixture
def playbook_identity(identity):
    return identity("core-platform")


# (one test, one start of the Longhorn simulator: the cases read and write nothing it holds)
CASES = [
    ("settings-empty", {"settings_args": {"settings": {}, "namespace": "longhorn"}}),
    ("settings", {"settings_args": {"settings": {"default-replica-count": 2}, "namespace": "longhorn"}}),
    ("replicas", {"replicas_args": {"replicas": 2, "namespace": "longhorn"}}),
    ("replicas_by_volume", {"replicas_args": {"replicas_by_volume": {"pvc-arr": 1}, "namespace": "longhorn"}}),
]


def test_a_longhorn_namespace_that_does_not_exist_fails_naming_the_option(longhorn, run_playbook, playbook_identity):
    c = longhorn.cluster
    for case, args in CASES:
        offset = audit_size(c)
        run = run_playbook(c, PLAYBOOK, extra_vars=dict(args, may_fail=True))
        assert run.result["failed"] is True and run.result["msg"] == MESSAGE, (case, run.result)
        assert writes(c, offset) == [], case
        asked = [e["requestURI"] for e in audit_entries(c, offset)
                 if e["user"]["username"] == playbook_identity.username
                 and (e.get("objectRef") or {}).get("resource") == "namespaces"]
        assert asked == ["/api/v1/namespaces/longhorn"], case

    # in Longhorn's own namespace the namespace is not read
    offset = audit_size(c)
    run = run_playbook(c, PLAYBOOK, extra_vars={"settings_args": {"settings": {}}})
    assert run.rc == 0 and run.result["changed"] is False, run.stdout[-3000:]
    assert [e for e in audit_entries(c, offset) if e["user"]["username"].startswith(OPERATOR_USERS)
            and (e.get("objectRef") or {}).get("resource") == "namespaces"] == []
