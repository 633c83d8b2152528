import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import (
    as_stored,
    meaning,
    parse_tolerations,
    settings_changes,
    validate,
    with_toleration,
)

RUNBOOK = {  # runbook 001, section 2.4
    "default-replica-count": 2,
    "replica-soft-anti-affinity": False,
    "replica-auto-balance": "disabled",
    "replica-replenishment-wait-interval": 600,
    "concurrent-replica-rebuild-per-node-limit": 1,
}
FRESH = {  # what a fresh Longhorn 1.10 stores (per-engine JSON for the replica count)
    "default-replica-count": '{"v1":"3","v2":"3"}',
    "replica-soft-anti-affinity": "true",
    "replica-auto-balance": "best-effort",
    "replica-replenishment-wait-interval": "600",
    "concurrent-replica-rebuild-per-node-limit": "5",
}


def test_per_engine_json_means_the_plain_value():
    assert meaning("default-replica-count", '{"v1":"2","v2":"2"}') == meaning("default-replica-count", "2") == 2
    assert meaning("default-replica-count", 2) == 2
    assert meaning("default-replica-count", '{"v1":"2","v2":"3"}') == {"v1": 2, "v2": 3}


@pytest.mark.parametrize("name, stored, wanted", [
    ("replica-soft-anti-affinity", "false", False),
    ("replica-soft-anti-affinity", "False", "false"),
    ("replica-replenishment-wait-interval", "600", 600),
    ("replica-auto-balance", "disabled", "disabled"),
])
def test_same_meaning_in_other_forms(name, stored, wanted):
    assert meaning(name, stored) == meaning(name, wanted)


def test_integers_longhorn_accepts():
    # strings.TrimSpace, then strconv.ParseInt: a sign, leading zeros and spaces around are fine
    for text, number in (("+3", 3), (" 3 ", 3), ("03", 3), ("-0", 0)):
        assert meaning("replica-replenishment-wait-interval", text) == number


@pytest.mark.parametrize("wanted, message", [
    ({"default-replica-count": 25}, "default-replica-count: 25 is out of range; allowed: 1 to 20"),
    ({"default-replica-count": "two"}, "default-replica-count: 'two' is not an integer"),
    ({"replica-soft-anti-affinity": "maybe"}, "replica-soft-anti-affinity: 'maybe' is not a boolean"),
    ({"replica-auto-balance": "always"},
     "replica-auto-balance: 'always' is not allowed; allowed: disabled, least-effort, best-effort"),
    ({"concurrent-replica-rebuild-per-node-limit": -1}, "out of range; allowed: 0 or more"),
    ({"replica-count": 2}, "replica-count: not a setting this module knows; known: concurrent-replica"),
    ({"replica-auto-balance": '{"v1":"disabled"}'}, "is not allowed"),
    ({"default-replica-count": True}, "is not an integer"),
    # as longhorn-manager parses them (strconv.ParseInt base 10; ParseDataEngineSpecificSetting)
    ({"concurrent-replica-rebuild-per-node-limit": "1_0"}, "'1_0' is not an integer (an optional sign and digits"),
    ({"concurrent-replica-rebuild-per-node-limit": "\u0663"}, "is not an integer"),
    ({"concurrent-replica-rebuild-per-node-limit": "3.0"}, "is not an integer"),
    ({"default-replica-count": '{"v1":"2"}'},
     "default-replica-count: a value for each data engine, v1 and v2 (Longhorn refuses mismatched data engines); got v1"),
    ({"default-replica-count": {"v1": 2, "v3": 2}}, "a value for each data engine, v1 and v2"),
    ({"default-replica-count": '{"v1":2,"v2":2}'}, "per-engine JSON holds a string for each engine"),
    ({"default-replica-count": '{"v1":" 2","v2":"2"}'}, "' 2' is not an integer"),
    ({"default-replica-count": '{"v1":"2\\n","v2":"2"}'}, "is not an integer"),
    ({"concurrent-replica-rebuild-per-node-limit": 1 << 63}, "is not an integer"),
])
def test_validation_names_setting_and_allowed_values(wanted, message):
    errors = validate(wanted)
    assert len(errors) == 1 and message in errors[0]


def test_first_apply_changes_five_then_nothing_after_the_webhook_normalised():
    changes, tracker, rollback = settings_changes(FRESH, RUNBOOK)
    assert changes == {"default-replica-count": "2", "replica-soft-anti-affinity": "false",
                       "replica-auto-balance": "disabled",
                       "concurrent-replica-rebuild-per-node-limit": "1"}
    assert rollback == {k: FRESH[k] for k in changes}
    assert tracker.get_diff()["before"]["default-replica-count"] == '{"v1":"3","v2":"3"}'
    # the webhook stores "2" as per-engine JSON: a second run sees no change
    stored = dict(FRESH, **changes)
    stored["default-replica-count"] = '{"v1":"2","v2":"2"}'
    again, tracker, rollback = settings_changes(stored, RUNBOOK)
    assert again == {} and not tracker.has_difference and rollback == {}


def test_rollback_values_restore_exactly_what_was_stored():
    changes, _t, rollback = settings_changes(FRESH, RUNBOOK)
    after = dict(FRESH, **changes)
    undo, _t, _r = settings_changes(after, rollback)
    assert dict(after, **undo) == FRESH  # per-engine JSON included


def test_missing_setting_object_is_named():
    with pytest.raises(KeyError, match="node-drain-policy: no such Setting object"):
        settings_changes(FRESH, {"node-drain-policy": "always-allow"})


def test_as_stored_strings():
    assert as_stored("replica-soft-anti-affinity", False) == "false"
    assert as_stored("default-replica-count", 2) == "2"
    assert as_stored("default-replica-count", {"v1": 2, "v2": 3}) == '{"v1": "2", "v2": "3"}'
    assert as_stored("default-replica-count", '{"v1":"3","v2":"3"}') == '{"v1":"3","v2":"3"}'


LANE = {"key": "workload-lane", "value": "secondary", "effect": "NoSchedule"}


def test_taint_toleration_is_read_as_longhorn_reads_it_and_compared_as_a_set():
    """types.UnmarshalTolerations: spaces removed, ';' between tolerations."""
    assert parse_tolerations("taint-toleration", "a=b:NoSchedule; c:NoExecute") == [
        ("a", "Equal", "b", "NoSchedule"), ("c", "Exists", "", "NoExecute")]
    assert parse_tolerations("taint-toleration", "") == []
    assert meaning("taint-toleration", "c:NoExecute;a=b:NoSchedule") == meaning("taint-toleration", "a=b:NoSchedule; c:NoExecute")
    changes, tracker, rollback = settings_changes({"taint-toleration": "a=b:NoSchedule"},
                                                  {"taint-toleration": "a = b:NoSchedule"})
    assert changes == {} and not tracker.has_difference and rollback == {}


@pytest.mark.parametrize("value, message", [
    ("a=b", "taint-toleration: 'a=b' is not key=value:effect or key:effect"),
    ("a:Sometimes", "taint-toleration: 'a:Sometimes' has effect 'Sometimes'; allowed: NoSchedule, PreferNoSchedule, NoExecute"),
    ("a:", "taint-toleration: 'a:' has effect ''; allowed: NoSchedule, PreferNoSchedule, NoExecute"),
    ("node.kubernetes.io/unschedulable:NoSchedule",
     "taint-toleration: 'node.kubernetes.io/unschedulable:NoSchedule': a key may not contain kubernetes.io"
     " (Kubernetes' default tolerations)"),
    (["a:NoSchedule"], "taint-toleration: ['a:NoSchedule'] is not a string such as key=value:NoSchedule;key2:NoExecute"),
])
def test_bad_taint_toleration_names_the_setting_and_the_form(value, message):
    assert validate({"taint-toleration": value}) == [message]


def test_with_toleration_adds_the_taint_once_and_keeps_the_rest():
    assert with_toleration("", LANE) == "workload-lane=secondary:NoSchedule"
    assert with_toleration("gpu:NoSchedule", LANE) == "gpu:NoSchedule;workload-lane=secondary:NoSchedule"
    # tolerated already: exactly, or by an Exists toleration of the key and effect
    assert with_toleration("workload-lane=secondary:NoSchedule", LANE) == "workload-lane=secondary:NoSchedule"
    assert with_toleration("workload-lane:NoSchedule", LANE) == "workload-lane:NoSchedule"
    # another value or effect of the key does not tolerate it
    assert with_toleration("workload-lane=primary:NoSchedule", LANE) == \
        "workload-lane=primary:NoSchedule;workload-lane=secondary:NoSchedule"
