"""The demo simulator: the trader's services and the broker in one seeded world.

``trademon sim`` serves automatictrader-api, marketdata-stream, position-manager and
ib-exporter on their ports with the contract's metrics, driven by a fast simulated clock,
and can be told to misbehave (scenarios) through a control endpoint.
"""
