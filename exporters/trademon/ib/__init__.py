"""The Interactive Brokers exporter: broker truth from TWS / IB Gateway, read-only.

api: ib_async, or ib_insync where only that is installed; config: settings from the
environment; state: the metrics fed by the client library's events; connection: connect,
heartbeat, resubscribe, reconnect forever; cli: ``trademon ib-exporter``.
"""
