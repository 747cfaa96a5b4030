"""The typed `[providers.docker]`, `[providers.etcd]` and `[cluster]` tables.

The providers read routes and services from a Docker engine or from etcd keys; `[cluster]`
makes several Wharf hosts share their apps' instances through etcd (docs/discovery.md).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Annotated, Any

from wharf.config import converters as c

_PREFIX = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def etcd_endpoints(value: Any) -> tuple[str, ...]:
    """A non-empty list of `http://HOST:PORT` URLs."""
    from wharf.clients.http import Endpoint

    if not isinstance(value, list) or not value:
        raise ValueError(f"must be a list of etcd URLs like [\"http://127.0.0.1:2379\"], "
                         f"got {value!r}")
    for item in value:
        if not isinstance(item, str) or item.startswith("unix:"):
            raise ValueError(f"must be a list of http://HOST:PORT URLs, got {item!r}")
        Endpoint.parse(item)  # its ValueError names the URL
    return tuple(value)


def docker_endpoint(value: Any) -> str:
    """`unix:///PATH` or `http://HOST:PORT` (the engine's API, as DOCKER_HOST spells it)."""
    from wharf.clients.http import Endpoint

    if not isinstance(value, str):
        raise ValueError(f"must be unix:///PATH or http://HOST:PORT, got {value!r}")
    Endpoint.parse(value)
    return value


def key_prefix(value: Any) -> str:
    """An etcd key prefix: starts with "/", no trailing "/" (it is added)."""
    if not isinstance(value, str) or not _PREFIX.fullmatch(value) or value == "/":
        raise ValueError(f"must be a key prefix like \"/wharf\", got {value!r}")
    return value.rstrip("/")


def host_name(value: Any) -> str:
    """A name for this host in the cluster: letters, digits, ".", "_", "-"."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"must be a host name of letters, digits, '.', '_' or '-', "
                         f"got {value!r}")
    return value


_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def advertise_address(value: Any) -> str:
    """An IP address or a DNS name that the other hosts can reach (no port: each instance
    has its own)."""
    if isinstance(value, str):
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            if _DNS_NAME.fullmatch(value) and not value.replace(".", "").isdigit():
                return value.lower()
    raise ValueError(f"must be an IP address or a host name the other hosts reach, like "
                     f"\"10.0.0.2\", got {value!r}")


def _this_host() -> str:
    name = socket.gethostname().split(".")[0]
    return name if _NAME.fullmatch(name) else "wharf"


@dataclass(frozen=True, slots=True)
class DockerProviderConfig:
    """`[providers.docker]`: containers labelled `wharf.enable=true` become backends."""

    endpoint: Annotated[str, docker_endpoint] = "unix:///var/run/docker.sock"
    # a full list of the containers this often, beside the event stream (a missed event)
    refresh: Annotated[float, c.positive_duration] = 30.0
    # where the proxy reaches a container's port when its network gives no address (host mode)
    host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class EtcdProviderConfig:
    """`[providers.etcd]`: routes and services as JSON under `PREFIX/routes/` and
    `PREFIX/services/`."""

    endpoints: Annotated[tuple[str, ...], etcd_endpoints] = field(
        default=(), metadata={"required": True})
    prefix: Annotated[str, key_prefix] = "/wharf"
    timeout: Annotated[float, c.positive_duration] = 5.0  # of each call to etcd


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """`[cluster]`: this host's ready instances go into etcd under a lease; services with
    `scope = "cluster"` balance over every host's."""

    etcd: Annotated[tuple[str, ...], etcd_endpoints] = field(
        default=(), metadata={"required": True})
    name: Annotated[str, host_name] = field(default_factory=_this_host)
    ttl: Annotated[float, c.positive_duration] = 10.0  # a lost host leaves the pools by then
    prefix: Annotated[str, key_prefix] = "/wharf"
    # the address other hosts reach this host's instances at (apps must listen on it)
    advertise: Annotated[str, advertise_address] = "127.0.0.1"
