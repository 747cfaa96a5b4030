"""The registry: services and their backends, published to the proxy workers as snapshots."""
