"""Build stages: pure functions over Arrow record batches (see ``base.py`` for the contract)."""
