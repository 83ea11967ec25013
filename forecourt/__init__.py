"""Forecourt: wake up connected cars at the dealership, safely, for this car alone.

Three parts in one package: the carmaker's ``cloud`` that authorises and signs, the dealer's
``edge`` server that talks to cars over DoIP/UDS, and a ``vehicle`` simulator that verifies
everything it is sent. ``core`` is the pure domain they share; ``trust`` the keys, PKI and signed
bundles; ``ledger`` the tamper-evident log; ``store`` the database layer.
"""

__version__ = "0.1.0"
