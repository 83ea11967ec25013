"""The speed fix: same DoIP frames as stock doipclient, without the per-send hex dump."""

from __future__ import annotations

import binascii
import socket

import pytest
from doipclient import DoIPClient  # type: ignore[attr-defined]

from forecourt.edge.link.transport import EcuChannel, FastDoIPClient


def _unconnected(cls: type[DoIPClient], sock: socket.socket) -> DoIPClient:
    """A client object on one end of a socket pair, skipping the constructor's connect."""
    client = cls.__new__(cls)
    client._tcp_sock = sock
    client._protocol_version = 0x02
    client._auto_reconnect_tcp = False
    client._tcp_close_detected = False
    return client


def _frame_sent_by(cls: type[DoIPClient], payload: bytes) -> bytes:
    left, right = socket.socketpair()
    with left, right:
        _unconnected(cls, left).send_doip(0x8001, payload, disable_retry=True)  # type: ignore[no-untyped-call]
        right.settimeout(5)
        received = b""
        while len(received) < 8 + len(payload):
            received += right.recv(1 << 20)
    return received


def test_fast_client_puts_the_same_frame_on_the_wire_as_stock_doipclient() -> None:
    payload = bytes(range(256)) * 64
    assert _frame_sent_by(FastDoIPClient, payload) == _frame_sent_by(DoIPClient, payload)


class _NoIteration(bytes):
    """A payload that fails when iterated byte by byte, as a hex dump does."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("payload was iterated for a hex dump")


def test_stock_client_hex_dumps_every_payload_and_fast_client_does_not() -> None:
    payload = _NoIteration(b"\x36\x01" + bytes(4096))
    with pytest.raises(AssertionError, match="hex dump"):
        _frame_sent_by(DoIPClient, payload)
    assert _frame_sent_by(FastDoIPClient, payload)[8:] == payload


def test_channel_does_not_hex_dump_payloads_when_debug_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[bytes] = []

    def refuse_hexlify(data: bytes) -> bytes:
        raise AssertionError("payload was hex-dumped")

    monkeypatch.setattr(binascii, "hexlify", refuse_hexlify)
    channel = EcuChannel.__new__(EcuChannel)
    EcuChannel.__init__(channel, FastDoIPClient.__new__(FastDoIPClient), 0x1000)
    monkeypatch.setattr(
        channel, "specific_send", lambda payload, timeout=None: sent.append(payload)
    )
    channel.open().send(b"\x36\x01" + bytes(1024))
    assert sent == [b"\x36\x01" + bytes(1024)]
