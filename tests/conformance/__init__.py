"""The store conformance suite: one contract, run against every way of reaching a store.

See ``conftest.py`` for the backends and ``test_contract.py`` for the contract.
"""
