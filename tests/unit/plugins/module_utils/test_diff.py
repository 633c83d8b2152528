from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import (
    DifferenceTracker,
    merge_patch,
)


def test_tracker_counts_only_real_differences():
    t = DifferenceTracker()
    assert t.add("labels.workload-lane", None, "primary") is True
    assert t.add("spec.unschedulable", True, True) is False
    assert t.has_difference
    assert t.changed_fields == ["labels.workload-lane"]
    assert t.get_diff() == {"before": {"labels.workload-lane": None},
                            "after": {"labels.workload-lane": "primary"}}


def test_empty_tracker_is_no_change_and_empty_diff():
    t = DifferenceTracker()
    t.add("x", [1, 2], [1, 2])
    assert not t.has_difference
    assert t.get_diff() == {"before": {}, "after": {}}


def test_tracker_keeps_copies_not_references():
    before = {"a": [1]}
    t = DifferenceTracker()
    t.add("obj", before, {"a": [2]})
    before["a"].append(99)
    assert t.get_before() == {"obj": {"a": [1]}}


def test_merge_patch_adds_changes_and_deletes():
    before = {"metadata": {"labels": {"a": "1", "b": "2"}, "name": "n"},
              "spec": {"taints": [{"key": "x"}], "unschedulable": True}}
    after = {"metadata": {"labels": {"a": "1", "c": "3"}, "name": "n"},
             "spec": {"taints": []}}
    assert merge_patch(before, after) == {
        "metadata": {"labels": {"b": None, "c": "3"}},
        "spec": {"taints": [], "unschedulable": None},
    }


def test_merge_patch_of_equal_objects_is_empty():
    obj = {"a": {"b": [1, {"c": 2}]}}
    assert merge_patch(obj, {"a": {"b": [1, {"c": 2}]}}) == {}


def test_merge_patch_replaces_dict_with_scalar():
    assert merge_patch({"a": {"b": 1}}, {"a": 5}) == {"a": 5}


def test_merge_patch_rejects_non_dicts():
    import pytest

    with pytest.raises(TypeError):
        merge_patch([], {})
