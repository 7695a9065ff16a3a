"""Preferences: the SQLite store of pairs and votes, pair sampling, statistics, export."""
