"""The data plane: proxy workers that route, balance and forward HTTP/1.1."""

# How long a stopping worker lets requests in flight finish before it closes their connections.
DRAIN_TIMEOUT = 10.0
