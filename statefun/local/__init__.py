"""Embedded Stateful Functions runtime for one machine: module.yaml + HTTP functions + SQLite.

Run it with ``python -m statefun.local module.yaml`` (or ``statefun-local``); see docs/local.md.
"""
