"""Fixtures: the vehicle tests' provisioned car (store, services, a running DoIP entity)."""

from __future__ import annotations

from tests.vehicle.conftest import host, make_store, running, services

__all__ = ["host", "make_store", "running", "services"]
