# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base every module of homelab.k8s_ha stands on: the Kubernetes I/O adapter.

Connection and authentication are kubernetes.core's: its ``AUTH_ARG_SPEC`` (so the
``K8S_AUTH_*`` environment and an AWX Kubernetes credential work unchanged), its
``AnsibleK8SModule`` (server-side dry-run in check mode) and ``get_api_client``.
On top of that this adds what our modules share: one LIST per kind, a GET that
returns None for a missing object, an update that patches with resourceVersion and
retries on 409, and an exit that feeds ``changed`` and ``diff`` from one
``DifferenceTracker``. Domain logic lives in the pure module_utils, not here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import copy
import json
import math
import os
import time

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import (
    AUTH_ARG_SPEC,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import (
    AnsibleK8SModule,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import (
    get_api_client,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
)
from ansible_collections.homelab.k8s_ha.plugins.module_utils import api_errors
from ansible_collections.homelab.k8s_ha.plugins.module_utils.diff import merge_patch

try:
    from kubernetes.dynamic.exceptions import (
        ConflictError,
        DynamicApiError,
        NotFoundError,
        ResourceNotFoundError,
    )
except ImportError:  # reported by AnsibleK8SModule's requires("kubernetes")
    class ResourceNotFoundError(Exception):
        pass

    class DynamicApiError(Exception):
        pass

    class ConflictError(DynamicApiError):
        pass

    class NotFoundError(DynamicApiError):
        pass


try:
    from kubernetes.watch import Watch
except ImportError:  # reported by AnsibleK8SModule's requires("kubernetes")
    Watch = None

try:
    from kubernetes.client.rest import RESTClientObject
    from urllib3.util.retry import Retry
except ImportError:  # reported by AnsibleK8SModule's requires("kubernetes")
    RESTClientObject = Retry = None


try:
    # No HTTP answer: TLS or connection. Every request may meet it, not only discovery:
    # the client caches discovery, so the first LIST may be the first request sent.
    from urllib3.exceptions import HTTPError as _Unanswered
except ImportError:  # urllib3 comes with kubernetes
    class _Unanswered(Exception):
        pass


MERGE_PATCH = "application/merge-patch+json"
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class ConflictRetriesExhausted(Exception):
    """Every attempt of an update met a newer resourceVersion (HTTP 409)."""


class ObjectNotFound(Exception):
    """The object to update does not exist (nothing was written)."""


# Seconds a request may take to connect, and then to answer (doc fragment request_timeout).
REQUEST_TIMEOUT = 30


def argument_spec(**own):
    """kubernetes.core's auth options, the request timeout and the module's own options."""
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec["request_timeout"] = dict(type="float", default=REQUEST_TIMEOUT)
    spec.update(own)
    return spec


def with_deadline(rest_class, seconds, retry=None):
    """Give every request of the kubernetes client's REST class (``RESTClientObject``) that
    sets no timeout of its own ``seconds`` to connect and ``seconds`` to read. ``retry``
    (a urllib3 ``Retry``) replaces urllib3's default of three retries for the connections
    the client opens from then on: with ``read=0`` a read that timed out is not sent again
    (a GET would otherwise wait four times as long). A watch sets its own timeout and keeps
    it. Class-wide, because kubernetes.core's get_api_client may send discovery requests
    while it builds the client; a module is a process of its own. Returns the class's
    original ``request``."""
    original = getattr(rest_class.request, "homelab_original", rest_class.request)

    def request(self, method, url, *args, **kwargs):
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = (seconds, seconds)
        pool_kw = getattr(getattr(self, "pool_manager", None), "connection_pool_kw", None)
        if retry is not None and pool_kw is not None and pool_kw.get("retries") is not retry:
            pool_kw["retries"] = retry
        return original(self, method, url, *args, **kwargs)

    request.homelab_original = original
    rest_class.request = request
    return original


def given(options):
    """A list item's options as the task gave them: the argument spec fills every option
    it names, unset ones with None; those are dropped (an item is recorded as given)."""
    return dict((k, v) for k, v in options.items() if v is not None)


def api_error_message(exc):
    """The API server's own message from a dynamic-client error, else str(exc)."""
    for attr in ("summary", "body"):
        value = getattr(exc, attr, None)
        if callable(value):
            try:
                value = value()
            except Exception:  # pylint: disable=broad-except
                value = None
        if value:
            return "%s" % (value,)
    return "%s" % (exc,)


class K8sHaModule(object):
    """A module of this collection: kubernetes.core's module and client, plus helpers."""

    _batch = None  # (the item's label, the item, the results so far) while run_each runs
    _context = None  # the item a failure is about while a list is checked before any write

    def __init__(self, argument_spec, supports_check_mode=True, **kwargs):
        self.ansible = AnsibleK8SModule(argument_spec=argument_spec,
                                        supports_check_mode=supports_check_mode, **kwargs)
        self._client = None

    # -- proxies ------------------------------------------------------------------
    @property
    def params(self):
        return self.ansible.params

    @property
    def check_mode(self):
        return self.ansible.check_mode

    @property
    def diff_mode(self):
        return self.ansible._diff

    def fail_json(self, **kwargs):
        if self._batch is not None:
            # a failure inside run_each: name the item, and return the results of the
            # items before it (their writes were made) and this item's own, as a loop
            # over the module would register them
            label, item, results = self._batch
            msg = kwargs.pop("msg", "")
            mine = dict(kwargs, item=item, failed=True, msg=msg)
            mine.setdefault("changed", False)
            results = results + [mine]
            kwargs = dict(msg="%s: %s" % (label, msg), results=results,
                          changed=any(r.get("changed") for r in results))
        elif self._context is not None:
            kwargs["msg"] = "%s: %s" % (self._context, kwargs.get("msg", ""))
        self.ansible.fail_json(**kwargs)

    def get_bin_path(self, name):
        """The path of program ``name`` on PATH, or None."""
        return self.ansible._module.get_bin_path(name)  # pylint: disable=protected-access

    def run_command(self, argv):
        """Run a command (talosctl): ``(rc, stdout, stderr)``, through AnsibleModule."""
        return self.ansible._module.run_command(argv)  # pylint: disable=protected-access

    def exit_json(self, **kwargs):
        self.ansible.exit_json(**kwargs)

    # -- client ---------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            if RESTClientObject is not None and self.params.get("request_timeout"):
                with_deadline(RESTClientObject, self.params["request_timeout"], Retry(total=3, connect=1, read=0))
            try:
                self._client = get_api_client(module=self.ansible)
            except CoreException as e:  # no usable configuration
                self.fail_json(msg="Cannot connect to the Kubernetes API: %s. In use: %s."
                               % (("%s" % e).rstrip("."), self._credential()))
            except Exception as e:  # pylint: disable=broad-except
                # discovery may already run here: connection, TLS and auth errors
                self.fail_api("Cannot reach the Kubernetes API", e)
        return self._client

    # -- errors a person reads ----------------------------------------------------------
    def _server(self):
        """The API server's URL: the host option or K8S_AUTH_HOST, else the kubeconfig's."""
        if self._client is not None:
            return self._client.configuration.host
        host, _where = api_errors.option_source("host", self.params, os.environ)
        if host:
            return host
        try:
            from kubernetes.client import Configuration  # loaded by get_api_client
            return Configuration.get_default_copy().host
        except Exception:  # pylint: disable=broad-except
            return None

    def _credential(self):
        """Where the credential in use comes from (api_errors.credential); never its value."""
        kubeconfig, _where = api_errors.option_source("kubeconfig", self.params, os.environ)
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG")
        current = None
        if kubeconfig and not isinstance(kubeconfig, dict):
            try:
                from kubernetes.config import list_kube_config_contexts
                current = list_kube_config_contexts(config_file=kubeconfig)[1]["name"]
            except Exception:  # pylint: disable=broad-except
                current = None
        in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(SERVICE_ACCOUNT_TOKEN)
        return api_errors.credential(self.params, os.environ, in_cluster=in_cluster, current_context=current)

    def explain(self, action, exc, server=None):
        """``action``'s failure as a person reads it (api_errors.explain): a certificate
        that could not be verified, a refused credential, a forbidden request."""
        return api_errors.explain(action, getattr(exc, "status", None), api_error_message(exc),
                                  credential_in_use=self._credential(),
                                  ca_in_use=api_errors.trusted_ca(self.params, os.environ),
                                  server=server, timeout=self.params.get("request_timeout"),
                                  body=getattr(exc, "body", None))

    def fail_api(self, action, exc, server=None, **fields):
        """Fail the module for a refused or unanswered request, with ``explain``'s message;
        ``server`` defaults to the API server's URL ("": the action names it already)."""
        status = getattr(exc, "status", None)
        if status is not None:
            fields["status"] = status
        if server is None:
            server = self._server()
        self.fail_json(msg=self.explain(action, exc, server=server), **fields)

    def resource(self, kind, api_version):
        try:
            return self.client.resource(kind, api_version)
        except ResourceNotFoundError:
            self.fail_json(msg="The API server does not serve %s %s" % (api_version, kind))
        except Exception as e:  # pylint: disable=broad-except
            # discovery is the first request a module makes: connection, TLS, auth
            self.fail_api("Cannot reach the Kubernetes API at %s" % self.client.configuration.host, e, server="")

    def served(self, kind, api_version):
        """Whether the API server serves ``kind`` (an optional CRD, for example)."""
        try:
            self.client.resource(kind, api_version)
        except ResourceNotFoundError:
            return False
        except Exception as e:  # pylint: disable=broad-except
            self.fail_api("Cannot reach the Kubernetes API at %s" % self.client.configuration.host, e, server="")
        return True

    def list(self, kind, api_version="v1", namespace=None, **params):
        """One LIST request for a kind; returns a list of plain dicts.

        The response is parsed once as JSON (serialize=False): wrapping thousands of
        objects in the dynamic client's ResourceInstance only to unwrap them again
        costs more than the request itself."""
        return self.list_at(kind, api_version, namespace=namespace, **params)[0]

    def list_at(self, kind, api_version="v1", namespace=None, **params):
        """``(items, resourceVersion)`` of one LIST: the version a watch starts from."""
        res = self.resource(kind, api_version)
        try:
            response = self.client.get(res, namespace=namespace, serialize=False, **params)
        except (DynamicApiError, _Unanswered) as e:
            self.fail_api("Cannot list %s" % kind, e)
        data = json.loads(response.data)
        return list(data.get("items") or []), (data.get("metadata") or {}).get("resourceVersion")

    def wait_for_change(self, kind, api_version, resource_version, timeout, namespace=None, name=None,
                        label_selector=None):
        """Wait until an object of ``kind`` (``name``, or those ``label_selector`` finds)
        changes after ``resource_version``, at most ``timeout`` seconds: True on a change.

        A wait loop calls this between two reads instead of sleeping, so it reads again as
        soon as there is something new to read (one WATCH from that version), and still at
        least every ``timeout`` seconds. Where no watch can run (no version; 410 Gone, the
        version is too old; a proxy that cuts streams) it sleeps out the time: the loop then
        polls as it would without a watch."""
        t0 = time.monotonic()
        if resource_version and timeout > 0 and Watch is not None:
            watcher = Watch()
            seconds = max(1, int(math.ceil(timeout)))
            try:
                # The API server ends the watch after timeout_seconds; the client's own
                # read timeout ends it too when the server does not (a stalled connection).
                events = watcher.stream(
                    self.resource(kind, api_version).get, namespace=namespace,
                    field_selector="metadata.name=%s" % name if name else None,
                    label_selector=label_selector, resource_version=resource_version,
                    serialize=False, timeout_seconds=seconds, _request_timeout=seconds + 5)
                for event in events:
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        watcher.stop()
                        return True
                    break  # ERROR (an expired version): poll instead
            except Exception:  # pylint: disable=broad-except
                pass  # the next read reports what is wrong with the API server
            finally:
                watcher.stop()
        left = timeout - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
        return False

    def get(self, kind, api_version, name, namespace=None):
        """The object as a dict, or None when it does not exist."""
        res = self.resource(kind, api_version)
        try:
            return self.client.get(res, name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None
        except (DynamicApiError, _Unanswered) as e:
            self.fail_api("Cannot read %s %s" % (kind, name), e)

    def namespace_exists(self, name):
        """Whether namespace ``name`` exists: one GET, for a module that found none of its
        objects in it (a namespace that does not exist lists as empty, not as an error)."""
        return self.get("Namespace", "v1", name) is not None

    def update(self, kind, api_version, name, mutate, namespace=None, retries=5,
               backoff=0.2):
        """Read, change with ``mutate``, write with resourceVersion; retry on 409.

        ``mutate(obj)`` gets a deep copy of the current object and returns the
        desired one (pure). A merge patch carrying the read ``resourceVersion`` makes
        the API server refuse the write if the object changed since it was read; then
        the whole read-mutate-write is done again, up to ``retries`` times. In check
        mode the patch is a server-side dry run, so nothing is written.

        Returns ``(before, after)``; ``after`` is ``before`` when nothing changes.
        Raises ObjectNotFound (before any write) when the object does not exist."""
        res = self.resource(kind, api_version)
        for attempt in range(retries):
            try:
                before = self.client.get(res, name=name, namespace=namespace).to_dict()
            except NotFoundError:
                raise ObjectNotFound("%s %s not found" % (kind, name))
            except (DynamicApiError, _Unanswered) as e:
                self.fail_api("Cannot read %s %s" % (kind, name), e)
            desired = mutate(copy.deepcopy(before))
            patch = merge_patch(before, desired)
            if not patch:
                return before, before
            patch.setdefault("metadata", {})["resourceVersion"] = (
                before["metadata"]["resourceVersion"])
            try:
                after = self.client.patch(res, patch, name=name, namespace=namespace,
                                          content_type=MERGE_PATCH).to_dict()
                return before, after
            except ConflictError:
                time.sleep(backoff * (attempt + 1))
            except (DynamicApiError, _Unanswered) as e:
                self.fail_api("Cannot update %s %s" % (kind, name), e)
        raise ConflictRetriesExhausted(
            "%s %s kept changing under us: %d attempts met HTTP 409" % (kind, name, retries))

    def write(self, verb, kind, api_version, body=None, name=None, namespace=None,
              resource_version=None):
        """``create``, ``replace`` or ``delete`` one object; a dict (the object, or the
        server's answer to a delete). ``replace`` carries ``body``'s resourceVersion
        and ``delete`` the given ``resource_version`` as a precondition, so either is
        refused with HTTP 409 when the object changed since it was read.

        Raises ConflictError (409: exists, or changed) and NotFoundError (404) for the
        caller to decide; any other refusal fails the module. In check mode the
        request is a server-side dry run (kubernetes.core's client adds it)."""
        res = self.resource(kind, api_version)
        try:
            if verb == "create":
                out = self.client.create(res, body, namespace=namespace)
            elif verb == "replace":
                out = self.client.replace(res, body, namespace=namespace)
            elif verb == "delete":
                opts = {}
                if resource_version:
                    opts["body"] = {"apiVersion": "v1", "kind": "DeleteOptions",
                                    "preconditions": {"resourceVersion": resource_version}}
                    if getattr(self.client, "dry_run", False):
                        # The API server reads a DELETE's options from its body when it
                        # has one and then ignores the query string, so the dryRun the
                        # client adds to the URL would be lost: it must be in the body.
                        opts["body"]["dryRun"] = ["All"]
                out = self.client.delete(res, name=name, namespace=namespace, **opts)
            else:
                raise ValueError("verb: %r; use create, replace or delete" % (verb,))
        except (ConflictError, NotFoundError):
            raise
        except (DynamicApiError, _Unanswered) as e:
            self.fail_api("Cannot %s %s %s" % (verb, kind, name or (body or {}).get("metadata", {}).get("name")), e)
        return out.to_dict() if hasattr(out, "to_dict") else out

    def raw_get(self, path):
        """GET a non-resource path (``/readyz``): ``(HTTP status, body text)``."""
        dynamic = self.client.client  # kubernetes.core's K8SClient wraps the DynamicClient
        try:
            response = dynamic.request("get", path)
            data = getattr(response, "data", response)  # a raw response, or its body already read
            return 200, data.decode("utf-8", "replace") if isinstance(data, bytes) else "%s" % (data,)
        except Exception as e:  # pylint: disable=broad-except
            status, _message = self._refusal(e, "Cannot read %s" % path)
            return status, "%s" % (getattr(e, "body", "") or e,)

    def proxy_get(self, path):
        """GET through a proxy subresource (``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/...``):
        ``(HTTP status, body text)`` as the proxied server or the API server answered, any
        status (an app's own 401 or 500 is an answer, not a refused credential: the reads
        before it already used the credential). Fails only when no HTTP answer came."""
        dynamic = self.client.client
        try:
            response = dynamic.request("get", path, serialize=False)
            data = getattr(response, "data", b"")
            return response.status, data.decode("utf-8", "replace") if isinstance(data, bytes) else "%s" % (data,)
        except Exception as e:  # pylint: disable=broad-except
            status = getattr(e, "status", None)
            if status is None:
                self.fail_api("Cannot GET %s" % path, e)
            return status, api_error_message(e)

    def _refusal(self, exc, action):
        """``(HTTP status, the server's message)`` of a refused request. A request that got
        no HTTP answer, or whose credential was refused (401), fails the module: nothing
        else could work either. A 403 comes with who was refused what and the rbac/ role."""
        status = getattr(exc, "status", None)
        if status is None:
            self.fail_api("Cannot reach the Kubernetes API", exc)
        if status == 401:
            self.fail_api(action, exc)
        if isinstance(exc, DynamicApiError):
            message = api_error_message(exc)
        else:  # kubernetes.client's ApiException: the Status object is the body
            message = getattr(exc, "body", "") or "%s" % exc
            try:
                message = json.loads(message).get("message", message)
            except (TypeError, ValueError, AttributeError):
                pass
        if status == 403:
            message = api_errors.forbidden(message)
        return status, message

    def evict(self, name, namespace, dry_run=False):
        """Evict a pod through the Eviction API (PodDisruptionBudgets respected): None when
        the API server evicts it (or would, with ``dry_run``), else "HTTP <code>: <message>"
        (429 when a PodDisruptionBudget forbids it)."""
        from kubernetes.client import CoreV1Api  # imported where AnsibleK8SModule required it

        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": name, "namespace": namespace}}
        try:
            CoreV1Api(self.client.client.client).create_namespaced_pod_eviction(
                name, namespace, body, **({"dry_run": "All"} if dry_run else {}))
        except Exception as e:  # pylint: disable=broad-except
            return "HTTP %s: %s" % self._refusal(e, "Cannot evict Pod %s/%s" % (namespace, name))
        return None

    def evict_dry_run(self, name, namespace):
        """A server-side dry-run eviction (see ``evict``)."""
        return self.evict(name, namespace, dry_run=True)

    def dry_run_patch(self, kind, api_version, name, patch, namespace=None):
        """What the API server (and its admission webhooks) say of a merge patch, as a
        server-side dry run: None when it would be accepted, else "HTTP <code>: <message>".
        Nothing is written either way."""
        res = self.resource(kind, api_version)
        try:
            self.client.patch(res, patch, name=name, namespace=namespace,
                              content_type=MERGE_PATCH, dry_run="All")
        except (DynamicApiError, _Unanswered) as e:
            return "HTTP %s: %s" % self._refusal(e, "Cannot patch %s %s (dry run)" % (kind, name))
        return None

    @contextlib.contextmanager
    def about(self, label):
        """A failure inside the block starts with ``label`` (an item of a list that is
        checked before any write)."""
        self._context = label
        try:
            yield
        finally:
            self._context = None

    def run_each(self, option, items, one, name=None):
        """One module call for a list of items, registered the way a loop over the module
        would be (plans and applies take one call per step, not one per object).

        ``one(item)`` does one item and returns ``(tracker, result)``. The module exits
        with ``results``, one per item in order, each ``result`` plus ``item``,
        ``changed`` and (in diff mode) ``diff``; ``changed`` if any item changed, and
        ``diff`` the changed items' diffs. A failure of item ``i`` fails the call with a
        message starting ``<option>[i] (<name>)``, and still returns the results of the
        items before it, whose changes were made."""
        results, diffs = [], []
        for index, item in enumerate(items):
            label = "%s[%d] (%s)" % (option, index, name(item) if name else index)
            self._batch = (label, item, results)
            tracker, result = one(item)
            self._batch = None
            result = dict(result, item=item, changed=tracker.has_difference)
            if self.diff_mode:
                result["diff"] = tracker.get_diff()
                if tracker.has_difference:
                    diffs.append(dict(result["diff"], before_header=label, after_header=label))
            results.append(result)
        out = dict(results=results, changed=any(r["changed"] for r in results))
        if self.diff_mode:
            out["diff"] = diffs
        self.exit_json(**out)

    def exit_with(self, tracker, **result):
        """Exit with ``changed`` and ``diff`` both taken from ``tracker``."""
        result["changed"] = tracker.has_difference
        if self.diff_mode:
            result["diff"] = tracker.get_diff()
        self.exit_json(**result)
