"""Aggregation of per-model results into tables, and the analyses derived from them."""
