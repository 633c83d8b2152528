"""The shared I/O base: update() with resourceVersion and retry on 409; refusals explained."""

import json
import os

import pytest
from kubernetes.dynamic.exceptions import ConflictError, DynamicApiError

from ansible_collections.homelab.k8s_ha.plugins.module_utils import kube


class Obj(object):
    def __init__(self, d):
        self.d = d

    def to_dict(self):
        return self.d


class FakeClient(object):
    """Stands in for kubernetes.core's K8SClient: a node whose version moves."""

    def __init__(self, conflicts=0):
        self.node = {"metadata": {"name": "worker-1", "resourceVersion": "1", "labels": {}},
                     "spec": {}}
        self.conflicts = conflicts
        self.patches = []

    def resource(self, kind, api_version):
        return (kind, api_version)

    def get(self, res, name=None, namespace=None):
        return Obj(self.node)

    def patch(self, res, body, name=None, namespace=None, content_type=None):
        self.patches.append((body, content_type))
        if self.conflicts:
            self.conflicts -= 1
            # someone else wrote in between: the version moves on
            self.node = dict(self.node, metadata=dict(
                self.node["metadata"], resourceVersion=str(int(self.node["metadata"]["resourceVersion"]) + 1)))
            raise ConflictError(_Exc409())
        labels = dict(self.node["metadata"]["labels"], **body["metadata"].get("labels", {}))
        self.node = dict(self.node, metadata=dict(self.node["metadata"], labels=labels))
        return Obj(self.node)


class _Exc409(Exception):
    status = 409
    reason = "Conflict"
    body = '{"message": "the object has been modified"}'
    headers = {}


class Failed(Exception):
    pass


def module_with(client):
    m = object.__new__(kube.K8sHaModule)
    m._client = client

    class Ansible(object):
        params = {}
        check_mode = False
        _diff = True

        def fail_json(self, **kw):
            raise Failed(kw["msg"])

    m.ansible = Ansible()
    return m


def add_lane(obj):
    obj["metadata"]["labels"]["workload-lane"] = "primary"
    return obj


def test_update_sends_resource_version_as_merge_patch():
    c = FakeClient()
    before, after = module_with(c).update("Node", "v1", "worker-1", add_lane)
    assert before["metadata"]["labels"] == {}
    assert after["metadata"]["labels"] == {"workload-lane": "primary"}
    body, ctype = c.patches[0]
    assert ctype == "application/merge-patch+json"
    assert body == {"metadata": {"labels": {"workload-lane": "primary"}, "resourceVersion": "1"}}


def test_update_rereads_and_retries_on_conflict():
    c = FakeClient(conflicts=2)
    _before, after = module_with(c).update("Node", "v1", "worker-1", add_lane, backoff=0)
    assert after["metadata"]["labels"] == {"workload-lane": "primary"}
    assert [b["metadata"]["resourceVersion"] for b, _ctype in c.patches] == ["1", "2", "3"]


def test_update_gives_up_after_retries():
    c = FakeClient(conflicts=10)
    with pytest.raises(kube.ConflictRetriesExhausted, match="3 attempts met HTTP 409"):
        module_with(c).update("Node", "v1", "worker-1", add_lane, retries=3, backoff=0)


def test_update_without_change_writes_nothing():
    c = FakeClient()
    before, after = module_with(c).update("Node", "v1", "worker-1", lambda o: o)
    assert before is after and c.patches == []


def test_argument_spec_reuses_kubernetes_core_auth_options():
    spec = kube.argument_spec(node=dict(type="str"))
    for option in ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert"):
        assert option in spec
    assert spec["api_key"]["no_log"] is True
    assert spec["node"] == {"type": "str"}


# --- refusals as a person reads them (the messages themselves: test_api_errors.py) -------

class _Refusal(Exception):
    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.reason = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Error")
        self.body = '{"kind": "Status", "message": %s, "code": %d}' % (json.dumps(message), status)
        self.headers = {"Content-Type": "application/json"}


FORBIDDEN = ('nodes "worker-1" is forbidden: User "system:serviceaccount:homelab-operators:homelab-audit" '
             'cannot get resource "nodes" in API group "" at the cluster scope')


class RefusingClient(FakeClient):
    """Every read is refused with ``status``."""

    class configuration(object):
        host = "https://10.0.0.1:6443"

    def __init__(self, status, message):
        FakeClient.__init__(self)
        self.error = DynamicApiError(_Refusal(status, message))
        self.error.status = status

    def get(self, res, name=None, namespace=None, **params):
        raise self.error


@pytest.fixture
def token_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_") or name == "KUBECONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("K8S_AUTH_HOST", "https://10.0.0.1:6443")
    monkeypatch.setenv("K8S_AUTH_API_KEY", "the-token-itself")


def test_list_forbidden_names_who_what_and_the_rbac_role(token_env):
    with pytest.raises(Failed) as failed:
        module_with(RefusingClient(403, FORBIDDEN)).list("Node")
    msg = str(failed.value)
    assert msg.startswith("Cannot list Node: forbidden (HTTP 403): system:serviceaccount:homelab-operators:"
                          "homelab-audit may not get nodes at the cluster scope. Bind it to the ClusterRole")
    assert "kubectl apply -f rbac/<family>.yml" in msg


def test_update_refused_at_its_read_fails_with_the_credential_in_use(token_env):
    with pytest.raises(Failed) as failed:
        module_with(RefusingClient(401, "Unauthorized")).update("Node", "v1", "worker-1", add_lane)
    assert str(failed.value).startswith(
        "Cannot read Node worker-1: the API server at https://10.0.0.1:6443 refused the credential (HTTP 401 "
        "Unauthorized). In use: the bearer token in K8S_AUTH_API_KEY for K8S_AUTH_HOST https://10.0.0.1:6443.")
    assert "the-token-itself" not in str(failed.value)


def test_a_refused_dry_run_returns_the_explanation_and_a_401_fails(token_env):
    class DryRunRefused(RefusingClient):
        def patch(self, res, body, **params):
            raise self.error

    forbidden = DryRunRefused(403, FORBIDDEN.replace("get", "patch"))
    refused = module_with(forbidden).dry_run_patch("Node", "v1", "worker-1", {"spec": {"unschedulable": True}})
    assert refused.startswith("HTTP 403: system:serviceaccount:homelab-operators:homelab-audit may not patch "
                              "nodes at the cluster scope. Bind it to the ClusterRole")
    with pytest.raises(Failed, match=r"^Cannot patch Node worker-1 \(dry run\): the API server at "
                                     r"https://10.0.0.1:6443 refused the credential"):
        module_with(DryRunRefused(401, "Unauthorized")).dry_run_patch("Node", "v1", "worker-1", {})


def test_a_request_without_an_answer_names_the_ca_options(token_env, monkeypatch):
    """Discovery is cached, so the first request may be the one that meets a bad CA."""
    from urllib3.exceptions import MaxRetryError, SSLError

    monkeypatch.setenv("K8S_AUTH_SSL_CA_CERT", "/etc/other-ca.crt")
    client = RefusingClient(403, "")
    client.error = MaxRetryError(None, "/api/v1/nodes", SSLError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate "
        "(_ssl.c:1006)"))
    with pytest.raises(Failed) as failed:
        module_with(client).list("Node")
    assert str(failed.value) == (
        "Cannot list Node: the server's certificate could not be verified at https://10.0.0.1:6443 (unable to get "
        "local issuer certificate); trusted: the CA file /etc/other-ca.crt (K8S_AUTH_SSL_CA_CERT). Give the CA "
        "that signed the API server's certificate: K8S_AUTH_SSL_CA_CERT=<ca.crt> (the ca_cert option), or "
        "certificate-authority in the kubeconfig. Only on a test cluster: validate_certs: false "
        "(K8S_AUTH_VERIFY_SSL=false) turns the check off.")


class FakeWatch(object):
    """kubernetes.watch.Watch: ``stream`` answers with ``events`` or raises ``error``, and
    records the function and the arguments it was given."""

    streams = []

    def __init__(self, events=(), error=None):
        self.events, self.error = list(events), error

    def __call__(self):
        return self

    def stream(self, func, **kw):
        FakeWatch.streams.append(dict(kw, func=func))
        if self.error is not None:
            raise self.error
        yield from self.events

    def stop(self):
        pass


class Listable(object):
    """A discovered resource whose ``get`` is the list call a watch streams."""

    def __init__(self, kind, api_version):
        self.kind, self.api_version = kind, api_version

    def get(self, **kw):
        raise AssertionError("the fake watch never calls the list itself")


def watching(monkeypatch, events=(), error=None):
    FakeWatch.streams = []
    monkeypatch.setattr(kube, "Watch", FakeWatch(events, error))
    client = FakeClient()
    client.resource = Listable  # pylint: disable=attribute-defined-outside-init
    return client


def test_wait_for_change_returns_at_the_first_event_from_the_version_it_was_given(monkeypatch):
    slept = []
    monkeypatch.setattr(kube.time, "sleep", slept.append)
    client = watching(monkeypatch, events=[{"type": "MODIFIED", "object": {}}])
    assert module_with(client).wait_for_change("Deployment", "apps/v1", "41", 2.5, namespace="apps", name="web")
    assert slept == []
    watch, = FakeWatch.streams
    assert (watch["func"].__self__.kind, watch["func"].__self__.api_version) == ("Deployment", "apps/v1")
    assert (watch["namespace"], watch["field_selector"], watch["resource_version"]) == ("apps", "metadata.name=web", "41")
    # the server ends the watch after 3 s; the client's read timeout, should the server not
    assert (watch["timeout_seconds"], watch["_request_timeout"], watch["serialize"]) == (3, 8, False)


def test_wait_for_change_sleeps_out_the_time_without_a_version_or_when_the_watch_fails(monkeypatch):
    slept = []
    monkeypatch.setattr(kube.time, "sleep", slept.append)
    client = watching(monkeypatch, events=[{"type": "MODIFIED", "object": {}}])
    assert not module_with(client).wait_for_change("Pod", "v1", None, 1.0, namespace="apps")
    assert FakeWatch.streams == [] and len(slept) == 1 and 0.9 < slept[0] <= 1.0
    slept[:] = []
    gone = watching(monkeypatch, events=[{"type": "ERROR", "object": {"code": 410}}])
    assert not module_with(gone).wait_for_change("Pod", "v1", "7", 1.0, namespace="apps")
    assert len(slept) == 1 and 0.9 < slept[0] <= 1.0
    slept[:] = []
    broken = watching(monkeypatch, error=OSError("connection reset"))
    assert not module_with(broken).wait_for_change("Pod", "v1", "7", 1.0, namespace="apps")
    assert len(slept) == 1 and 0.9 < slept[0] <= 1.0


class Exited(Exception):
    pass


def batch_module():
    """A module whose fail_json and exit_json raise with what they were given."""
    m = object.__new__(kube.K8sHaModule)

    class Ansible(object):
        params = {}
        check_mode = False
        _diff = True

        def fail_json(self, **kw):
            raise Failed(kw)

        def exit_json(self, **kw):
            raise Exited(kw)

    m.ansible = Ansible()
    return m


class Tracker(object):
    def __init__(self, name, changed):
        self.has_difference = changed
        self.name = name

    def get_diff(self):
        return {"before": {"n": self.name}, "after": {"n": self.name + "'" if self.has_difference else self.name}}


def test_run_each_registers_the_results_as_a_loop_would():
    m = batch_module()
    with pytest.raises(Exited) as out:
        m.run_each("nodes", [{"name": "a"}, {"name": "b"}],
                   lambda item: (Tracker(item["name"], item["name"] == "b"), {"rollback": {"name": item["name"]}}),
                   name=lambda item: item["name"])
    got = out.value.args[0]
    assert got["changed"] is True
    assert [(r["item"], r["changed"], r["rollback"]) for r in got["results"]] == [
        ({"name": "a"}, False, {"name": "a"}), ({"name": "b"}, True, {"name": "b"})]
    assert got["results"][1]["diff"] == {"before": {"n": "b"}, "after": {"n": "b'"}}
    # the diff a person reads: the changed items only, each headed by its name
    assert got["diff"] == [{"before": {"n": "b"}, "after": {"n": "b'"},
                            "before_header": "nodes[1] (b)", "after_header": "nodes[1] (b)"}]


def test_run_each_failure_names_the_item_and_keeps_the_results_before_it():
    m = batch_module()
    started = []

    def one(item):
        started.append(item["name"])
        if item["name"] == "c":
            m.fail_json(msg="rollout not done", changed=True, rollback={"name": "c"})
        return Tracker(item["name"], True), {"rollback": {"name": item["name"]}}

    with pytest.raises(Failed) as out:
        m.run_each("targets", [{"name": "a"}, {"name": "c"}, {"name": "d"}], one, name=lambda i: i["name"])
    got = out.value.args[0]
    assert got["msg"] == "targets[1] (c): rollout not done"
    assert got["changed"] is True
    assert [(r["item"]["name"], r["changed"], r["rollback"]) for r in got["results"]] == [
        ("a", True, {"name": "a"}), ("c", True, {"name": "c"})]
    assert got["results"][1]["failed"] is True
    assert started == ["a", "c"]  # d was never started


def test_a_failure_while_a_list_is_checked_names_the_item():
    m = batch_module()
    with pytest.raises(Failed) as out:
        with m.about("targets[2] (apps/homarr)"):
            m.fail_json(msg="The API server does not serve apps/v1 HorizontalPodAutoscaler")
    assert out.value.args[0]["msg"] == "targets[2] (apps/homarr): The API server does not serve apps/v1 HorizontalPodAutoscaler"
    assert m._context is None  # pylint: disable=protected-access
    with pytest.raises(Failed) as out:
        m.fail_json(msg="later")
    assert out.value.args[0]["msg"] == "later"


class _Exc404(Exception):
    status = 404
    reason = "Not Found"
    body = '{"message": "namespaces \\"longhorn\\" not found"}'
    headers = {}


def test_namespace_exists_is_one_get_and_a_404_is_no():
    from kubernetes.dynamic.exceptions import NotFoundError

    class Namespaces(FakeClient):
        def __init__(self, names):
            super(Namespaces, self).__init__()
            self.names, self.asked = names, []

        def get(self, res, name=None, namespace=None):
            self.asked.append((res, name))
            if name not in self.names:
                raise NotFoundError(_Exc404())
            return Obj({"metadata": {"name": name}})

    c = Namespaces(["longhorn-system"])
    m = module_with(c)
    assert m.namespace_exists("longhorn-system") and not m.namespace_exists("longhorn")
    assert c.asked == [(("Namespace", "v1"), "longhorn-system"), (("Namespace", "v1"), "longhorn")]
