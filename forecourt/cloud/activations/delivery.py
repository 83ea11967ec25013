"""What the edge must fetch for a signed bundle: its images, read from the director's targets.

The director's targets name, per ECU serial, every image the car will install with its length
and SHA-256 (they are what the car verifies). The edge needs the same list to fill its package
cache before the car is touched, plus where to fetch each one (the content-addressed package
route) and which ECU it is for. Reading it from the bundle keeps one source of truth: the list
can never disagree with what was signed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from forecourt.core import EcuRole

PACKAGE_URL = "/v1/packages/{sha256}"


def bundle_images(bundle: bytes, roles: Mapping[str, EcuRole]) -> list[dict[str, Any]]:
    """``[{name, sha256, size, ecu_serial, ecu_role, ecu_address, url}]`` of a signed bundle.

    ``roles`` maps ECU serials to their roles (the registry's or the request's inventory).
    """
    signed = json.loads(bundle)["director"]["targets"]["signed"]
    images: list[dict[str, Any]] = []
    for _path, target in sorted(signed.get("targets", {}).items()):
        custom = target.get("custom", {})
        serial = str(custom["ecuIdentifier"])
        role = roles.get(serial)
        sha256 = str(target["hashes"]["sha256"])
        images.append(
            {
                "name": str(custom["image"]),
                "sha256": sha256,
                "size": int(target["length"]),
                "ecu_serial": serial,
                "ecu_role": role.value if role else None,
                "ecu_address": role.logical_address if role else None,
                "url": PACKAGE_URL.format(sha256=sha256),
            }
        )
    return images
