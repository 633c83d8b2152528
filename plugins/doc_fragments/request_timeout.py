# -*- coding: utf-8 -*-
# Copyright: homelab.k8s_ha contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The deadline of every API request of a module that talks to the Kubernetes API."""

    DOCUMENTATION = r"""
options:
  request_timeout:
    description:
      - Seconds each request to the Kubernetes API may take to connect, and then to answer.
        A request that exceeds it fails the module with a message naming the request,
        the API server and this option, instead of waiting for ever on a server that
        accepts connections and never answers.
      - A request that timed out is not sent again. A connection that could not be made
        is tried once more, so a module gives up after at most about twice this time per
        request.
      - A module that waits (a rollout, a volume's replicas) has a deadline of its own for
        the wait; its watches and polls set their own timeouts, which this leaves alone.
    type: float
    default: 30
"""
