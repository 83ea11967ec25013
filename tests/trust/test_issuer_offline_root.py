"""A repository serves root metadata its offline root keys signed earlier, holding only the
online role keys (the cloud's serving process never loads a root key)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tuf.api.serialization.json import CanonicalJSONSerializer

from forecourt.trust._sslib import CryptoSigner, Metadata, Root, Targets
from forecourt.trust.canonical import canonical_bytes
from forecourt.trust.issuer import Repository, RepositoryKeys, RoleSigners, RootKeysMismatch

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def _keys() -> RepositoryKeys:
    def one() -> RoleSigners:
        return RoleSigners([CryptoSigner.generate_ed25519()])

    return RepositoryKeys(root=one(), timestamp=one(), snapshot=one(), targets=one(), offline=one())


def _exported_root(keys: RepositoryKeys) -> Metadata[Root]:
    """What ``cloud init-keys`` writes: root v1 signed with the root key, read back."""
    signed = Repository(keys, EXPIRES).root
    return Metadata[Root].from_bytes(canonical_bytes(signed.to_dict()))


def _verify(root: Metadata[Root], role: str, md: Metadata[Any]) -> None:
    """Raises unless ``md`` carries the threshold of ``role``'s keys listed in ``root``."""
    payload = CanonicalJSONSerializer().serialize(md.signed)
    root.signed.verify_delegate(role, payload, md.signatures)


def test_a_repository_without_root_keys_serves_the_exported_root_and_signs_online_roles() -> None:
    keys = _keys()
    exported = _exported_root(keys)
    online = replace(keys, root=RoleSigners([]))

    repository = Repository(online, EXPIRES, root=exported)
    published = repository.publish(Targets(), datetime.now(UTC) + timedelta(hours=1))

    assert canonical_bytes(repository.root.to_dict()) == canonical_bytes(exported.to_dict())
    _verify(exported, "root", exported)
    _verify(exported, "targets", published.targets)
    assert published.timestamp is not None
    _verify(exported, "timestamp", published.timestamp)


def test_online_keys_the_exported_root_does_not_list_are_refused() -> None:
    exported = _exported_root(_keys())
    stranger = _keys()

    with pytest.raises(RootKeysMismatch) as refused:
        Repository(replace(stranger, root=RoleSigners([])), EXPIRES, root=exported)
    assert refused.value.role == "timestamp"
