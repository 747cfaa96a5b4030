"""Build hook: compile the proxy's request path with mypyc when it is available.

The modules are ordinary typed Python; mypyc turns them into C extensions, which cut the
proxy's own CPU per request by about a third (bench/proxy.py). Without mypyc, or with
WHARF_PURE_PYTHON=1, the same modules run as Python.
"""

import os

from setuptools import setup

HOT_PATH = ["wharf/proxy/server.py", "wharf/proxy/reader.py", "wharf/proxy/downstream.py",
            "wharf/proxy/exchange.py", "wharf/proxy/request.py", "wharf/proxy/forward.py",
            "wharf/proxy/relay.py", "wharf/proxy/upstream.py",
            "wharf/proxy/pool.py", "wharf/proxy/routing.py", "wharf/proxy/http1.py",
            "wharf/proxy/rewrite.py", "wharf/proxy/plane.py", "wharf/proxy/services.py",
            "wharf/proxy/https.py", "wharf/proxy/tlsconn.py", "wharf/proxy/counters.py",
            "wharf/proxy/ratelimit.py", "wharf/proxy/date.py", "wharf/proxy/buffering.py",
            "wharf/proxy/accesslog.py",
            "wharf/proxy/balancers/__init__.py", "wharf/proxy/balancers/round_robin.py",
            "wharf/proxy/balancers/weighted.py", "wharf/proxy/balancers/least_conn.py",
            "wharf/proxy/balancers/consistent_hash.py", "wharf/proxy/balancers/sticky_cookie.py",
            "wharf/proxy/balancers/p2c.py", "wharf/proxy/balancers/peak_ewma.py",
            "wharf/registry/snapshot.py"]



def ext_modules() -> list:
    """The compiled modules, or none when mypyc is missing or not wanted."""
    if os.environ.get("WHARF_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return []
    return mypycify(HOT_PATH, opt_level="3")


if __name__ == "__main__":
    setup(ext_modules=ext_modules())
