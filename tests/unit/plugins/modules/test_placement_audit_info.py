"""placement_audit_info's argument handling, without a cluster."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.k8s_ha.plugins.modules import placement_audit_info


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        placement_audit_info.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_unknown_option_fails_before_any_request(run_refused):
    code, out = run_refused(placement_audit_info, {"nodes": "worker-1"})
    assert code == 1 and out["failed"]
    assert "nodes" in out["msg"] and "Supported parameters include" in out["msg"]


def test_namespaces_must_be_a_list_of_strings(capsys):
    code, out = run_module({"namespaces": {"a": 1}}, capsys)
    assert code == 1
    assert "namespaces" in out["msg"]


def test_unreachable_cluster_gives_a_clear_error(capsys, tmp_path):
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    code, out = run_module({"kubeconfig": str(kubeconfig)}, capsys)
    assert code == 1
    # whether discovery fails while the client is made or on the first request
    assert out["msg"].startswith("Cannot reach the Kubernetes API")
    assert "127.0.0.1" in out["msg"] and "Connection refused" in out["msg"]


@pytest.mark.parametrize("since", ["yesterday", "2026-11-21T19:00:00+01:00", "2026-11-21"])
def test_events_since_that_is_not_rfc_3339_in_utc_fails_before_any_request(run_refused, since):
    """Compared as a string, "yesterday" counted no FailedScheduling event: the audit passed."""
    code, out = run_refused(placement_audit_info, {"events_since": since})
    assert code == 1 and out["failed"]
    assert out["msg"] == (
        'events_since: "%s" is not an RFC 3339 time in UTC; allowed: YYYY-MM-DDTHH:MM:SS, an optional fraction, '
        "then Z or +00:00 (for example 2026-11-21T18:00:00Z or 2026-11-21T18:00:00.250000Z)" % since)
