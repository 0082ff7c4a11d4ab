"""Alertmanager: its rendered config, the watch that keeps it current, the market clock."""
