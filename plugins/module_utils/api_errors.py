# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a person reads when the Kubernetes API refused us or could not be reached, pure.

``explain`` turns a failed request (the HTTP status, or None when no HTTP answer came,
and the server's message or the connection error's text) into a message that says what
went wrong and what to change: a certificate that could not be verified names the CA
options, a refused credential (401) names the credential in use, a forbidden request
(403) names who was refused what and the ClusterRole of rbac/ to bind. ``credential``
and ``trusted_ca`` say where kubernetes.core took the credential and the CA from, with
its own precedence (module options, then ``K8S_AUTH_*``, then a kubeconfig). Secrets
(tokens, passwords) are never part of a message: only where they came from.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

# The playbook families of rbac/ (one ClusterRole homelab-k8s-ha-<family> in
# rbac/<family>.yml each). The one copy of this list in the plugins; a unit test holds
# it equal to the files of rbac/.
RBAC_FAMILIES = ("audit", "guardrails", "core-platform", "app-migration", "active-passive", "capi-rollout")
CLUSTER_ROLE_PREFIX = "homelab-k8s-ha-"

# kubernetes.core's option name -> the names of K8S_AUTH_* it reads it from (its
# _create_auth_spec: K8S_AUTH_<option>, else K8S_AUTH_<client configuration name>).
ENV_NAMES = {
    "kubeconfig": ("K8S_AUTH_KUBECONFIG",),
    "context": ("K8S_AUTH_CONTEXT",),
    "host": ("K8S_AUTH_HOST",),
    "api_key": ("K8S_AUTH_API_KEY",),
    "username": ("K8S_AUTH_USERNAME",),
    "password": ("K8S_AUTH_PASSWORD",),
    "client_cert": ("K8S_AUTH_CLIENT_CERT", "K8S_AUTH_CERT_FILE"),
    "client_key": ("K8S_AUTH_CLIENT_KEY", "K8S_AUTH_KEY_FILE"),
    "ca_cert": ("K8S_AUTH_CA_CERT", "K8S_AUTH_SSL_CA_CERT"),
    "validate_certs": ("K8S_AUTH_VALIDATE_CERTS", "K8S_AUTH_VERIFY_SSL"),
}
# What the playbooks set an option from (module_defaults in playbooks/*.yml).
PLAYBOOK_VARS = {"kubeconfig": "homelab_kubeconfig", "context": "homelab_kube_context"}

_TLS = (re.compile(r"certificate verify failed:?\s*(.*?)\s*\(_ssl\.c:\d+\)", re.I),
        re.compile(r"certificate verify failed:?\s*([^'\")\]]*)", re.I))
_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) '
    r'(?:resource "(?P<resource>[^"]*)"(?: in API group "(?P<group>[^"]*)")?|path "(?P<path>[^"]*)")'
    r'(?: (?:at (?P<cluster>the cluster scope)|in the namespace "(?P<namespace>[^"]*)"))?')


def option_source(option, params, environ):
    """``(value, where)`` of one of kubernetes.core's connection options: the module's
    option when given, else the first ``K8S_AUTH_*`` variable set, else ``(None, None)``."""
    value = (params or {}).get(option)
    if value is not None:
        return value, "the %s option" % option
    for name in ENV_NAMES.get(option, ()):
        if (environ or {}).get(name):
            return environ[name], name
    return None, None


def _option_label(option, where):
    if where == "the %s option" % option and option in PLAYBOOK_VARS:
        return "%s (the %s option)" % (PLAYBOOK_VARS[option], option)
    return where


def credential(params, environ, in_cluster=False, current_context=None):
    """Which credential kubernetes.core's client uses, as a phrase; never its value.
    ``current_context``: the current-context of the kubeconfig file in use, if known.

    Its order: a token (api_key) with a host, a username and password with a host, or
    a client certificate and key with a host; else the kubeconfig or context given;
    else the pod's ServiceAccount (in a cluster); else KUBECONFIG or ~/.kube/config."""
    def get(option):
        return option_source(option, params, environ)

    host, host_from = get("host")
    server = " for %s %s" % (host_from if host_from.startswith("K8S_") else "host", host) if host else ""
    token, token_from = get("api_key")
    if token and host:
        return "the bearer token in %s%s" % (token_from if token_from.startswith("K8S_") else
                                             "the api_key option", server)
    user, user_from = get("username")
    password, password_from = get("password")
    if user and password and host:
        return "the username %r (%s) and the password of %s%s" % (user, user_from, password_from, server)
    cert, cert_from = get("client_cert")
    key, _key_from = get("client_key")
    if cert and key and host:
        return "the client certificate %s (%s)%s" % (cert, cert_from, server)

    kubeconfig, kubeconfig_from = get("kubeconfig")
    context, context_from = get("context")
    if isinstance(kubeconfig, dict) and not current_context:
        current_context = kubeconfig.get("current-context")
    if context:
        which = "context %r from %s" % (context, _option_label("context", context_from))
    elif current_context:
        which = "its current-context %r" % (current_context,)
    else:
        which = "its current-context"
    if kubeconfig:
        if isinstance(kubeconfig, dict):
            return "the kubeconfig given as a dict in %s, %s" % (
                _option_label("kubeconfig", kubeconfig_from), which)
        if kubeconfig_from.startswith("K8S_"):
            return "the kubeconfig file %s from %s, %s" % (kubeconfig, kubeconfig_from, which)
        # Ansible masks the kubeconfig option's value (no_log) wherever it is printed
        return "the kubeconfig file given by %s, %s" % (_option_label("kubeconfig", kubeconfig_from), which)
    if not context and in_cluster:
        return "the pod's ServiceAccount token (in-cluster configuration)"
    if (environ or {}).get("KUBECONFIG"):
        return "the kubeconfig file %s from KUBECONFIG, %s" % (environ["KUBECONFIG"], which)
    return ("the default kubeconfig file ~/.kube/config (none of homelab_kubeconfig, KUBECONFIG"
            " or K8S_AUTH_API_KEY is set), %s" % which)


def trusted_ca(params, environ):
    """Which CA the client checks the server's certificate against, as a phrase."""
    ca, ca_from = option_source("ca_cert", params, environ)
    if ca:
        return "the CA file %s (%s)" % (ca, ca_from)
    token, _token_from = option_source("api_key", params, environ)
    host, _host_from = option_source("host", params, environ)
    if token and host:
        return "the system's trusted CAs (no K8S_AUTH_SSL_CA_CERT is set)"
    return "the certificate-authority of the kubeconfig in use"


def tls_reason(text):
    """Why the server's certificate was not accepted, from a connection error's text
    (urllib3 wraps Python's ssl error), or None when it is no certificate failure."""
    text = "%s" % (text,)
    for pattern in _TLS:
        m = pattern.search(text)
        if m:
            return m.group(1).strip().rstrip(".") or "certificate verify failed"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return "certificate verify failed"
    return None


def forbidden_request(message):
    """The parts of the API server's 403 message: user, verb, resource (or path), API
    group and scope; None for parts it does not name."""
    m = _FORBIDDEN.search(message or "")
    if not m:
        return {"user": None, "verb": None, "resource": None, "group": None, "scope": None}
    resource = m.group("resource") or m.group("path")
    group = m.group("group")
    if m.group("namespace") is not None:
        scope = 'in the namespace "%s"' % m.group("namespace")
    elif m.group("cluster"):
        scope = "at the cluster scope"
    else:
        scope = None
    return {"user": m.group("user"), "verb": m.group("verb"), "resource": resource,
            "group": group, "scope": scope}


def bind_command(user, family="<family>"):
    """The kubectl command that binds ``user`` to a family's ClusterRole of rbac/."""
    role = CLUSTER_ROLE_PREFIX + family
    sa = re.match(r"^system:serviceaccount:([^:]+):([^:]+)$", user or "")
    if sa:
        return "kubectl create clusterrolebinding %s-%s --clusterrole=%s --serviceaccount=%s:%s" % (
            sa.group(2), family, role, sa.group(1), sa.group(2))
    return "kubectl create clusterrolebinding <name>-%s --clusterrole=%s --user=%s" % (family, role, user or "<user>")


def forbidden(message):
    """What a person reads of a 403: who may not do what, and the rbac/ binding to make."""
    req = forbidden_request(message)
    who = req["user"] or "the identity in use"
    if req["verb"]:
        what = "%s %s%s" % (req["verb"], req["resource"],
                            ' (API group "%s")' % req["group"] if req["group"] else "")
        refused = "%s may not %s%s" % (who, what, " " + req["scope"] if req["scope"] else "")
    else:
        refused = "%s was refused" % who
    return ("%s. Bind it to the ClusterRole of the family of the playbook you run, from rbac/"
            " (%s<family> in rbac/<family>.yml; families: %s; operate/catalog.yml names each"
            " playbook's family, rbac/README.md shows how): kubectl apply -f rbac/<family>.yml,"
            " then %s. The API server said: %s"
            % (refused, CLUSTER_ROLE_PREFIX, ", ".join(RBAC_FAMILIES), bind_command(req["user"]),
               (message or "").strip()))


_TIMED_OUT = ("ReadTimeoutError", "ConnectTimeoutError", "Read timed out", "timed out")


def timed_out(text):
    """Whether a connection error's text says the server did not answer in time (urllib3's
    ReadTimeoutError or ConnectTimeoutError, wrapped in MaxRetryError)."""
    text = "%s" % (text,)
    return any(marker in text for marker in _TIMED_OUT)


# A value the API server quotes back whole: the object it could not decode, a long string.
_QUOTED = re.compile(r'Invalid value: "(?:[^"\\]|\\.)*"')
_UNMARSHAL = re.compile(r"json: cannot unmarshal (?P<got>\w+) into Go (?:struct field|value of type) "
                        r"(?:\w+\.)?(?P<field>[\w.\[\]]*)(?: of type (?P<want>[\w.\[\]]+))?")
_LONG_VALUE = 60


def _cause(cause):
    """One of a 422's ``details.causes`` as a line: the field and the API server's reason,
    without the whole object it quotes back when it could not decode a patch."""
    message = "%s" % (cause.get("message") or cause.get("reason") or "invalid")
    field = cause.get("field") or ""
    m = _UNMARSHAL.search(message)
    if m:
        # the decoder names the field by its Go path: DeploymentSpec.spec.replicas
        field = m.group("field") or field
        message = "a %s where the API wants %s" % (m.group("got"), m.group("want") or "another type")
    else:
        message = _QUOTED.sub(lambda q: q.group(0) if len(q.group(0)) - len('Invalid value: ""') <= _LONG_VALUE
                              else "Invalid value (the object as sent)", message)
    return "%s: %s" % (field, message) if field and field != "patch" else message


def unprocessable(body):
    """The reasons of an HTTP 422 answer (a value the API server refused) from its Status
    ``body`` (JSON text or dict), one per cause, or None when the body has no causes."""
    try:
        status = json.loads(body) if isinstance(body, (str, bytes)) else (body or {})
    except ValueError:
        return None
    causes = ((status or {}).get("details") or {}).get("causes") or []
    return "; ".join(_cause(c) for c in causes) or None


def explain(action, status, message, credential_in_use=None, ca_in_use=None, server=None, timeout=None,
            body=None):
    """The message for a request that failed: ``action`` (what we tried, "Cannot list
    Node"), the HTTP ``status`` (None: no HTTP answer), the server's ``message`` (or
    the connection error's text), where the credential and the CA came from (phrases of
    ``credential`` and ``trusted_ca``), the API server's URL and the request timeout in
    force (seconds)."""
    message = ("%s" % (message,)).strip()
    at = " at %s" % server if server else ""
    if status is None and timeout and timed_out(message):
        return ("%s: the API server%s did not answer within %s s (request_timeout); it may be"
                " overloaded or hung. Raise request_timeout for a slow server." % (action, at, _seconds(timeout)))
    if status is None:
        reason = tls_reason(message)
        if reason:
            return ("%s: the server's certificate could not be verified%s (%s); trusted: %s."
                    " Give the CA that signed the API server's certificate: K8S_AUTH_SSL_CA_CERT=<ca.crt>"
                    " (the ca_cert option), or certificate-authority in the kubeconfig. Only on a"
                    " test cluster: validate_certs: false (K8S_AUTH_VERIFY_SSL=false) turns the check off."
                    % (action, at, reason, ca_in_use or "the certificate-authority of the kubeconfig in use"))
        return "%s: %s" % (action, message)
    if status == 401:
        return ("%s: the API server%s refused the credential (HTTP 401 Unauthorized). In use: %s."
                " A token may have expired (those of kubectl create token do, after --duration):"
                " make a new one, and check that it belongs to this cluster."
                % (action, at, credential_in_use or "the kubeconfig's current-context"))
    if status == 403:
        return "%s: forbidden (HTTP 403): %s" % (action, forbidden(message))
    if status == 422 and body is not None:
        reasons = unprocessable(body)
        if reasons:
            return "%s: the API server refused the value (HTTP 422): %s" % (action, reasons)
    return "%s: %s" % (action, message)


def _seconds(value):
    value = float(value)
    return "%d" % value if value == int(value) else "%g" % value
