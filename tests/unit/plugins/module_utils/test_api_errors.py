"""What a person reads when the API server refused us or could not be reached."""

import json
from pathlib import Path

import pytest
import yaml

from ansible_collections.homelab.k8s_ha.plugins.module_utils import api_errors as ae

ROOT = Path(__file__).resolve().parents[4]
SERVER = "https://192.168.1.10:6443"
# what urllib3 raises when the CA given does not sign the API server's certificate
TLS_TEXT = ("HTTPSConnectionPool(host='192.168.1.10', port=6443): Max retries exceeded with url: /version "
            "(Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
            "verify failed: unable to get local issuer certificate (_ssl.c:1006)')))")
FORBIDDEN_NODE = ('nodes "worker-1" is forbidden: User "system:serviceaccount:homelab-operators:homelab-audit" '
                  'cannot patch resource "nodes" in API group "" at the cluster scope')
TOKEN_ENV = {"K8S_AUTH_HOST": SERVER, "K8S_AUTH_API_KEY": "eyJhbGciOiJSUzI1NiJ9.secret",
             "K8S_AUTH_SSL_CA_CERT": "/etc/homelab/ca.crt"}


def test_the_families_are_those_of_rbac():
    files = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "rbac").glob("*.yml")}
    assert set(ae.RBAC_FAMILIES) == set(files)
    for family, role in files.items():
        assert role["metadata"]["name"] == ae.CLUSTER_ROLE_PREFIX + family


# --- a certificate that could not be verified ---------------------------------------------

def test_tls_reason_from_urllib3_text():
    assert ae.tls_reason(TLS_TEXT) == "unable to get local issuer certificate"
    assert ae.tls_reason("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, "
                         "certificate is not valid for '10.0.0.1'. (_ssl.c:1006)") == \
        "IP address mismatch, certificate is not valid for '10.0.0.1'"
    assert ae.tls_reason("SSLError('certificate verify failed')") == "certificate verify failed"
    assert ae.tls_reason("[SSL: CERTIFICATE_VERIFY_FAILED]") == "certificate verify failed"
    refused = ("HTTPSConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /version (Caused by "
               "NewConnectionError('Failed to establish a new connection: [Errno 111] Connection refused'))")
    assert ae.tls_reason(refused) is None


def test_tls_failure_names_the_ca_options_and_the_ca_in_use():
    msg = ae.explain("Cannot reach the Kubernetes API", None, TLS_TEXT,
                     ca_in_use=ae.trusted_ca({}, TOKEN_ENV), server=SERVER)
    assert msg == (
        "Cannot reach the Kubernetes API: the server's certificate could not be verified at "
        "https://192.168.1.10:6443 (unable to get local issuer certificate); trusted: the CA file "
        "/etc/homelab/ca.crt (K8S_AUTH_SSL_CA_CERT). Give the CA that signed the API server's certificate: "
        "K8S_AUTH_SSL_CA_CERT=<ca.crt> (the ca_cert option), or certificate-authority in the kubeconfig. "
        "Only on a test cluster: validate_certs: false (K8S_AUTH_VERIFY_SSL=false) turns the check off.")


@pytest.mark.parametrize("params, environ, trusted", [
    ({"ca_cert": "/opt/ca.pem"}, TOKEN_ENV, "the CA file /opt/ca.pem (the ca_cert option)"),
    ({}, {"K8S_AUTH_CA_CERT": "/a.crt"}, "the CA file /a.crt (K8S_AUTH_CA_CERT)"),
    ({}, {"K8S_AUTH_HOST": SERVER, "K8S_AUTH_API_KEY": "t"},
     "the system's trusted CAs (no K8S_AUTH_SSL_CA_CERT is set)"),
    ({"kubeconfig": "/k"}, {}, "the certificate-authority of the kubeconfig in use"),
])
def test_trusted_ca(params, environ, trusted):
    assert ae.trusted_ca(params, environ) == trusted


def test_a_connection_error_that_is_not_tls_keeps_its_text():
    assert ae.explain("Cannot reach the Kubernetes API", None, "Connection refused", server=SERVER) == \
        "Cannot reach the Kubernetes API: Connection refused"


# --- a refused credential (401) ------------------------------------------------------------

def test_401_names_the_token_in_k8s_auth_api_key_never_its_value():
    msg = ae.explain("Cannot list Node", 401, "Unauthorized", credential_in_use=ae.credential({}, TOKEN_ENV),
                     server=SERVER)
    assert msg == (
        "Cannot list Node: the API server at https://192.168.1.10:6443 refused the credential (HTTP 401 "
        "Unauthorized). In use: the bearer token in K8S_AUTH_API_KEY for K8S_AUTH_HOST https://192.168.1.10:6443. "
        "A token may have expired (those of kubectl create token do, after --duration): make a new one, and "
        "check that it belongs to this cluster.")
    assert "secret" not in msg


@pytest.mark.parametrize("params, environ, current, phrase", [
    ({"api_key": "t", "host": SERVER}, {}, None,
     "the bearer token in the api_key option for host https://192.168.1.10:6443"),
    # a token with a host wins over a kubeconfig, as in kubernetes.core
    ({"kubeconfig": "/home/me/.kube/homelab"}, TOKEN_ENV, None,
     "the bearer token in K8S_AUTH_API_KEY for K8S_AUTH_HOST https://192.168.1.10:6443"),
    ({"kubeconfig": "/home/me/.kube/homelab", "context": "homelab"}, {}, None,
     "the kubeconfig file given by homelab_kubeconfig (the kubeconfig option), context 'homelab' from "
     "homelab_kube_context (the context option)"),
    ({"kubeconfig": "/home/me/.kube/homelab"}, {}, "admin@homelab",
     "the kubeconfig file given by homelab_kubeconfig (the kubeconfig option), its current-context 'admin@homelab'"),
    ({}, {"K8S_AUTH_KUBECONFIG": "/k", "K8S_AUTH_CONTEXT": "c"}, None,
     "the kubeconfig file /k from K8S_AUTH_KUBECONFIG, context 'c' from K8S_AUTH_CONTEXT"),
    ({"kubeconfig": {"current-context": "sa", "users": [{"name": "sa", "user": {"token": "secret"}}]}}, {}, None,
     "the kubeconfig given as a dict in homelab_kubeconfig (the kubeconfig option), its current-context 'sa'"),
    ({}, {"KUBECONFIG": "/home/me/.kube/config"}, "default",
     "the kubeconfig file /home/me/.kube/config from KUBECONFIG, its current-context 'default'"),
    ({}, {}, None,
     "the default kubeconfig file ~/.kube/config (none of homelab_kubeconfig, KUBECONFIG or K8S_AUTH_API_KEY "
     "is set), its current-context"),
    ({"username": "admin", "password": "pw", "host": SERVER}, {}, None,
     "the username 'admin' (the username option) and the password of the password option for host "
     "https://192.168.1.10:6443"),
    ({}, {"K8S_AUTH_HOST": SERVER, "K8S_AUTH_CERT_FILE": "/c.crt", "K8S_AUTH_KEY_FILE": "/c.key"}, None,
     "the client certificate /c.crt (K8S_AUTH_CERT_FILE) for K8S_AUTH_HOST https://192.168.1.10:6443"),
])
def test_credential_in_use(params, environ, current, phrase):
    assert ae.credential(params, environ, current_context=current) == phrase


def test_credential_in_a_pod():
    assert ae.credential({}, {}, in_cluster=True) == "the pod's ServiceAccount token (in-cluster configuration)"


# --- a forbidden request (403) -------------------------------------------------------------

@pytest.mark.parametrize("message, parts", [
    (FORBIDDEN_NODE, {"user": "system:serviceaccount:homelab-operators:homelab-audit", "verb": "patch",
                      "resource": "nodes", "group": "", "scope": "at the cluster scope"}),
    ('pods "web-1" is forbidden: User "jane" cannot create resource "pods/eviction" in API group "" in the '
     'namespace "apps"', {"user": "jane", "verb": "create", "resource": "pods/eviction", "group": "",
                          "scope": 'in the namespace "apps"'}),
    ('leases.coordination.k8s.io is forbidden: User "bob" cannot list resource "leases" in API group '
     '"coordination.k8s.io" in the namespace "homelab"',
     {"user": "bob", "verb": "list", "resource": "leases", "group": "coordination.k8s.io",
      "scope": 'in the namespace "homelab"'}),
    ('forbidden: User "bob" cannot get path "/readyz"',
     {"user": "bob", "verb": "get", "resource": "/readyz", "group": None, "scope": None}),
    ("Forbidden", {"user": None, "verb": None, "resource": None, "group": None, "scope": None}),
])
def test_forbidden_request_parts(message, parts):
    assert ae.forbidden_request(message) == parts


def test_403_names_the_user_the_refusal_and_the_rbac_binding():
    msg = ae.explain("Cannot update Node worker-1", 403, FORBIDDEN_NODE)
    assert msg == (
        "Cannot update Node worker-1: forbidden (HTTP 403): system:serviceaccount:homelab-operators:homelab-audit "
        "may not patch nodes at the cluster scope. Bind it to the ClusterRole of the family of the playbook you "
        "run, from rbac/ (homelab-k8s-ha-<family> in rbac/<family>.yml; families: audit, guardrails, "
        "core-platform, app-migration, active-passive, capi-rollout; operate/catalog.yml names each playbook's "
        "family, rbac/README.md shows how): kubectl apply -f rbac/<family>.yml, then kubectl create "
        "clusterrolebinding homelab-audit-<family> --clusterrole=homelab-k8s-ha-<family> "
        "--serviceaccount=homelab-operators:homelab-audit. The API server said: " + FORBIDDEN_NODE)


def test_403_of_a_named_api_group_and_a_plain_user():
    msg = ae.forbidden('User "jane" cannot delete resource "machines" in API group "cluster.x-k8s.io" in the '
                       'namespace "homelab"')
    assert msg.startswith('jane may not delete machines (API group "cluster.x-k8s.io") in the namespace '
                          '"homelab". Bind it to the ClusterRole')
    assert "kubectl create clusterrolebinding <name>-<family> --clusterrole=homelab-k8s-ha-<family> --user=jane" in msg


def test_403_without_the_api_servers_details():
    assert ae.forbidden("Forbidden").startswith("the identity in use was refused. Bind it to the ClusterRole")


def test_any_other_status_keeps_the_servers_message():
    assert ae.explain("Cannot list Node", 500, "etcdserver: request timed out") == \
        "Cannot list Node: etcdserver: request timed out"


def _status(field, message):
    return json.dumps({"kind": "Status", "code": 422, "reason": "Invalid",
                       "details": {"causes": [{"reason": "FieldValueInvalid", "field": field, "message": message}]}})


# what kube-apiserver 1.34 answered to merge patches of a Deployment (the object it quotes
# back is cut short here; it is the whole Deployment, managedFields and all)
OBJECT = '"{\\"apiVersion\\":\\"apps/v1\\",\\"kind\\":\\"Deployment\\",\\"metadata\\":{\\"name\\":\\"qdrant\\"' + ",\\\"x\\\":1" * 40 + '}"'


def test_a_refused_value_names_the_field_and_the_reason_not_the_object():
    from ansible_collections.homelab.k8s_ha.plugins.module_utils.api_errors import explain

    said = explain("Cannot update Deployment qdrant", 422, "ignored", body=_status(
        "patch", "Invalid value: %s: json: cannot unmarshal string into Go struct field "
                 "DeploymentSpec.spec.replicas of type int32" % OBJECT))
    assert said == ("Cannot update Deployment qdrant: the API server refused the value (HTTP 422): "
                    "spec.replicas: a string where the API wants int32")
    said = explain("Cannot update Deployment qdrant", 422, "ignored", body=_status(
        "spec.replicas", "Invalid value: -3: must be greater than or equal to 0"))
    assert said.endswith("(HTTP 422): spec.replicas: Invalid value: -3: must be greater than or equal to 0")
    said = explain("Cannot update Deployment qdrant", 422, "ignored", body=_status(
        "patch", "Invalid value: %s: quantities must match the regular expression "
                 "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'" % OBJECT))
    assert said == ("Cannot update Deployment qdrant: the API server refused the value (HTTP 422): "
                    "Invalid value (the object as sent): quantities must match the regular expression "
                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    assert "apiVersion" not in said
    # no causes: the API server's message as it is
    assert explain("Cannot update Deployment qdrant", 422, "is invalid", body="{}") == \
        "Cannot update Deployment qdrant: is invalid"
