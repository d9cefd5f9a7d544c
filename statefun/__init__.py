"""Typed, wire-compatible Stateful Functions 3.x SDK (drop-in for apache-flink-statefun)."""
