"""localnet: a stand-alone Solana JSON-RPC server over solders' LiteSVM, with a persistent ledger.

Start it with ``python -m localnet --ledger PATH`` (see :mod:`localnet.__main__`); use it from tests
through :class:`localnet.testing.Localnet`.  No Django imports here: the package runs alone.
"""

from __future__ import annotations

#: ``apiVersion`` reported in every ``context`` (the Agave release whose RPC shapes we follow).
API_VERSION = "2.2.7"
#: ``getVersion`` answer.
SOLANA_CORE_VERSION = "2.2.7"
FEATURE_SET = 3294202862

__all__ = ["API_VERSION", "FEATURE_SET", "SOLANA_CORE_VERSION"]
