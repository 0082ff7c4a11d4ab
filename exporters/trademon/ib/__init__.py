"""The Interactive Brokers exporter: broker truth from TWS / IB Gateway, read-only.

config: settings from the environment; state: the metrics fed by ib_async events;
connection: connect, heartbeat, resubscribe, reconnect forever; cli: ``trademon ib-exporter``.
"""
