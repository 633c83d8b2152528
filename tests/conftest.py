"""Make ``ansible_collections.homelab.k8s_ha`` importable from this checkout.

`make collection` links the checkout into .local/collections; ansible's own
collection loader then resolves homelab.k8s_ha and the venv's kubernetes.core."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".local" / "collections"
SITE = Path(sys.prefix) / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"


def _install_collection_loader():
    link = COLLECTIONS / "ansible_collections" / "homelab" / "k8s_ha"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(ROOT, link)
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    finder = _AnsibleCollectionFinder(paths=[str(COLLECTIONS), str(SITE)], scan_sys_paths=True)
    finder._install()  # pylint: disable=protected-access


_install_collection_loader()
