"""What operators watch: readiness, metrics, traces and log lines (docs/operations.md).

Each part is off until `serve` turns it on, and costs the call path nothing
while off: the modules here import prometheus_client and the OpenTelemetry
SDK only when they are asked to start.
"""
