"""Hosting cars: an asyncio loop in a background thread, driven from synchronous code.

Tests, benchmarks and the CLI all host cars the same way: :class:`SimulatorHost` owns one event
loop in a daemon thread; cars are started and stopped on it, and the caller's thread is free to
drive them with blocking clients (doipclient, udsoncan) as a real tester would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from forecourt.vehicle.car import Car
from forecourt.vehicle.doip.entity import DoipEntity, EntityConfig

_T = TypeVar("_T")


class SimulatorHost:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.entities: list[DoipEntity] = []

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the loop thread (to touch a car without racing its handlers)."""

        async def wrapper() -> _T:
            return function()

        return self.run(wrapper())

    def start_car(self, car: Car, config: EntityConfig) -> DoipEntity:
        entity = DoipEntity(car, config)
        self.run(entity.start())
        self.entities.append(entity)
        return entity

    def stop_car(self, entity: DoipEntity) -> None:
        self.run(entity.close())
        self.entities.remove(entity)

    def close(self) -> None:
        for entity in list(self.entities):
            self.stop_car(entity)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
