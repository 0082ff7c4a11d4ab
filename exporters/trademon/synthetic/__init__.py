"""Continuous synthetic checks: the trading API's circuit-breaker hook, the intent
pipeline, the health endpoints of every service, and the Watchdog alert."""
