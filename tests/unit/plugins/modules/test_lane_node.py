"""lane_node's argument handling, without a cluster: bad input fails before any client."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.homelab.k8s_ha.plugins.modules import lane_node


@pytest.fixture(autouse=True)
def no_client(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("bad input must fail before an API client is made")

    monkeypatch.setattr("ansible_collections.homelab.k8s_ha.plugins.module_utils.kube.get_api_client",
                        refuse)


def run_module(args, capsys):
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
        lane_node.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, message", [
    ({}, "one of the following is required: name, nodes"),
    ({"name": "w", "nodes": [{"name": "w"}]}, "parameters are mutually exclusive: name|nodes"),
    ({"nodes": [{"name": "w"}], "labels": {"a": "b"}}, "parameters are mutually exclusive: labels|nodes"),
    ({"nodes": [{"labels": {"a": "b"}}]}, "missing required arguments: name found in nodes"),
    # a top-level taints_state would be ignored for the nodes: refused, each node has its own
    ({"nodes": [{"name": "w"}], "taints_state": "exact"}, "parameters are mutually exclusive: taints_state|nodes"),
    ({"nodes": [{"name": "w", "taints": [{"key": "k", "effect": "NoScheduling"}]}]},
     "value of effect must be one of: NoSchedule, PreferNoSchedule, NoExecute, got: NoScheduling found in nodes -> taints"),
    # every node's input is checked before any node is read or written
    ({"nodes": [{"name": "w1", "labels": {"workload-lane": "primary"}},
                {"name": "w2", "labels": {"workload-lane": "second ary"}}]},
     "nodes[1] (w2): labels: value 'second ary' of 'workload-lane' must consist of"),
    ({"name": "w", "taints": [{"key": "k", "effect": "NoScheduling"}]},
     "value of effect must be one of: NoSchedule, PreferNoSchedule, NoExecute, got: NoScheduling"),
    ({"name": "w", "taints": [{"effect": "NoSchedule"}]}, "missing required arguments: key"),
    ({"name": "w", "taints_state": "replace"}, "value of taints_state must be one of: present, absent, exact"),
    ({"name": "w", "labels": {"workload-lane": "second ary"}},
     "labels: value 'second ary' of 'workload-lane' must consist of"),
    ({"name": "w", "labels": {"gpu": True}}, "labels: value True of 'gpu' must be a string (quote it in YAML)"),
    ({"name": "w", "taints": [{"key": "-bad", "effect": "NoSchedule"}]}, "taints[0].key '-bad'"),
    ({"name": "w", "cordon": "maybe"}, "cordon"),
])
def test_bad_input_names_the_field(args, message, capsys):
    code, out = run_module(args, capsys)
    assert code == 1 and out["failed"]
    assert message in out["msg"]
