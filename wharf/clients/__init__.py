"""Clients of the servers Wharf reads from: the Docker engine, etcd."""
