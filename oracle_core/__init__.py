"""Plumbing both oracles stand on: settings, database, chain, webhooks, storage, auth.

No business rules of either oracle live here.
"""
