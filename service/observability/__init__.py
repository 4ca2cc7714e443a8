"""Operating the service: Prometheus metrics, the access log with request ids, log format."""
