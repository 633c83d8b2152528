"""Running a module's main() on bad input, without a cluster."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args


@pytest.fixture
def run_refused(capsys, monkeypatch):
    """``run_refused(module, args)``: runs ``module.main()`` with ``args`` and returns its exit
    code and JSON result. Creating an API client fails the test: bad input must be refused
    before any request."""
    def no_client(*_args, **_kwargs):
        raise AssertionError("no API client may be created for bad input")

    monkeypatch.setattr("ansible_collections.homelab.k8s_ha.plugins.module_utils.kube.get_api_client", no_client)

    def run(module, args):
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            module.main()
        return exit_info.value.code, json.loads(capsys.readouterr().out)
    return run


@pytest.fixture(autouse=True)
def rest_request_restored(monkeypatch):
    """A module's client sets a deadline on the kubernetes client's REST class
    (kube.with_deadline): put the class back after each test."""
    try:
        from kubernetes.client.rest import RESTClientObject
    except ImportError:  # pragma: no cover
        return
    monkeypatch.setattr(RESTClientObject, "request", RESTClientObject.request)
