"""Several hosts sharing their apps' instances through etcd (`[cluster]`, docs/discovery.md)."""
