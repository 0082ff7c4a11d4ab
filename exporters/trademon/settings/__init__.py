"""Settings: the environment (env), the monitoring config (thresholds), the web config (webconfig)."""
