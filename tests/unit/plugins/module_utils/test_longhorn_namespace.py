"""A Longhorn namespace that does not exist lists as empty: each module that reads Longhorn's
objects fails naming its option, instead of finding nothing to do, and asks the API server
about the namespace (one GET) only when it found no Longhorn object at all."""

import pytest

from ansible_collections.homelab.k8s_ha.plugins.module_utils import app_gates, deployment_handover
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn import missing_namespace
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_settings import run_longhorn_settings
from ansible_collections.homelab.k8s_ha.plugins.module_utils.longhorn_volume_replicas import Run

longhorn_volumes_of = app_gates._longhorn_volumes  # pylint: disable=protected-access


class Failed(Exception):
    pass


class Exited(Exception):
    pass


class FakeModule(object):
    """Reads from ``objects`` ({(kind, namespace): [objects]}); any write fails the test."""

    check_mode = False
    diff_mode = False

    def __init__(self, params, objects=None, namespaces=("longhorn-system", "apps")):
        self.params = params
        self.objects = objects or {}
        self.namespaces = set(namespaces)
        self.requests = []

    def served(self, kind, api_version):
        return True

    def list(self, kind, api_version="v1", namespace=None, **_params):
        self.requests.append(("LIST", kind, namespace))
        return list(self.objects.get((kind, namespace), []))

    def get(self, kind, api_version, name, namespace=None):
        self.requests.append(("GET", kind, name))
        if kind == "Namespace":
            return {"metadata": {"name": name}} if name in self.namespaces else None
        return None

    def namespace_exists(self, name):
        return self.get("Namespace", "v1", name) is not None

    def fail_json(self, **kw):
        raise Failed(kw["msg"])

    def exit_json(self, **kw):
        raise Exited(kw)

    def exit_with(self, _tracker, **kw):
        raise Exited(kw)

    def write(self, *args, **kw):
        raise AssertionError("no write: %r" % (args,))

    update = dry_run_patch = evict = write


def asked_about_namespaces(m):
    return [r[2] for r in m.requests if r[:2] == ("GET", "Namespace")]


def test_the_message_names_the_option_the_namespace_and_where_longhorn_usually_is():
    assert missing_namespace("namespace", "longhorn-sytem") == (
        "namespace: no namespace longhorn-sytem; give the namespace Longhorn is installed in "
        "(longhorn-system by default; kubectl get settings.longhorn.io -A shows it)")


# --- longhorn_settings -------------------------------------------------------------------

SETTING = {"metadata": {"name": "default-replica-count"}, "value": '{"v1":"2","v2":"2"}'}


@pytest.mark.parametrize("settings", [{}, {"default-replica-count": 2}])
def test_longhorn_settings_in_a_namespace_that_does_not_exist_fails_naming_namespace(settings):
    # an empty settings (a rollback of a run that changed nothing) was an rc 0 no-op
    m = FakeModule({"settings": settings, "namespace": "longhorn-sytem"})
    with pytest.raises(Failed) as failed:
        run_longhorn_settings(m)
    assert str(failed.value) == missing_namespace("namespace", "longhorn-sytem")
    assert asked_about_namespaces(m) == ["longhorn-sytem"]


def test_longhorn_settings_asks_about_the_namespace_only_when_it_found_no_setting():
    m = FakeModule({"settings": {}, "namespace": "longhorn-system"},
                   {("Setting", "longhorn-system"): [SETTING]})
    with pytest.raises(Exited):
        run_longhorn_settings(m)
    assert asked_about_namespaces(m) == []
    # an existing namespace without settings is not this error
    m = FakeModule({"settings": {}, "namespace": "apps"})
    with pytest.raises(Exited):
        run_longhorn_settings(m)
    assert asked_about_namespaces(m) == ["apps"]


# --- longhorn_volume_replicas ----------------------------------------------------------------

def replicas_params(namespace, **kw):
    return dict({"replicas": 2, "replicas_by_volume": None, "names": [], "pvcs": [], "concurrency": 1,
                 "wait_timeout": 60, "poll_interval": 1, "keep_on": [], "if_uncordoned": [],
                 "namespace": namespace}, **kw)


@pytest.mark.parametrize("params", [{}, {"names": ["pvc-arr"]}, {"replicas": None, "replicas_by_volume": {"pvc-arr": 1}}])
def test_longhorn_volume_replicas_in_a_namespace_that_does_not_exist_fails_naming_namespace(params):
    m = FakeModule(replicas_params("longhorn", **params))
    with pytest.raises(Failed) as failed:
        Run(m).run()
    assert str(failed.value) == missing_namespace("namespace", "longhorn")
    assert asked_about_namespaces(m) == ["longhorn"]


def test_longhorn_volume_replicas_asks_about_the_namespace_only_when_it_found_nothing():
    m = FakeModule(replicas_params("longhorn-system"), {("Setting", "longhorn-system"): [SETTING]})
    with pytest.raises(Exited):  # no volume: nothing to do
        Run(m).run()
    assert asked_about_namespaces(m) == []
    m = FakeModule(replicas_params("apps"))
    with pytest.raises(Exited):
        Run(m).run()
    assert asked_about_namespaces(m) == ["apps"]


# --- app_gates_info and deployment_handover (option longhorn_namespace) -----------------------

PVC = {"metadata": {"name": "arr-config"}, "spec": {"volumeName": "pvc-arr", "accessModes": ["ReadWriteOnce"]}}
PV = {"metadata": {"name": "pvc-arr"}, "spec": {"csi": {"driver": "driver.longhorn.io", "volumeHandle": "pvc-arr"}}}
LOCAL_PV = {"metadata": {"name": "pvc-arr"}, "spec": {"csi": {"driver": "rancher.io/local-path", "volumeHandle": "x"}}}
VOLUME = {"metadata": {"name": "pvc-arr"}, "spec": {"numberOfReplicas": 2},
          "status": {"state": "attached", "robustness": "healthy"}}


def test_app_gates_with_longhorn_claims_and_no_such_namespace_fails_naming_longhorn_namespace():
    m = FakeModule({"longhorn_namespace": "longhorn"}, {("PersistentVolume", None): [PV]})
    with pytest.raises(Failed) as failed:
        longhorn_volumes_of(m, [PVC], ["arr-config"], "longhorn")
    assert str(failed.value) == missing_namespace("longhorn_namespace", "longhorn")
    # found volumes: no question; claims that are not Longhorn's: no volume read at all
    m = FakeModule({}, {("PersistentVolume", None): [PV], ("Volume", "longhorn-system"): [VOLUME]})
    assert [v["name"] for v in longhorn_volumes_of(m, [PVC], ["arr-config"], "longhorn-system")] == ["pvc-arr"]
    m2 = FakeModule({}, {("PersistentVolume", None): [LOCAL_PV]})
    assert longhorn_volumes_of(m2, [PVC], ["arr-config"], "longhorn") == []
    assert asked_about_namespaces(m) == asked_about_namespaces(m2) == []


def test_deployment_handover_with_longhorn_claims_and_no_such_namespace_fails_before_its_first_write():
    params = {"namespace": "apps", "giver": "arr-primary", "name": "arr-standby", "replicas": 1,
              "longhorn_namespace": "longhorn"}
    m = FakeModule(params, {("PersistentVolume", None): [PV]})
    h = deployment_handover.Handover(m)
    with pytest.raises(Failed) as failed:
        h.bind(["arr-config"], [PVC])
    assert str(failed.value) == missing_namespace("longhorn_namespace", "longhorn")
    m = FakeModule(dict(params, longhorn_namespace="longhorn-system"),
                   {("PersistentVolume", None): [PV], ("Volume", "longhorn-system"): [VOLUME]})
    deployment_handover.Handover(m).bind(["arr-config"], [PVC])
    m2 = FakeModule(params, {("PersistentVolume", None): [LOCAL_PV]})
    deployment_handover.Handover(m2).bind(["arr-config"], [PVC])
    assert asked_about_namespaces(m) == asked_about_namespaces(m2) == []
