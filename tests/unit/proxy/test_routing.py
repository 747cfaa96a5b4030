"""Route matching order and conditions, without sockets."""

from hypothesis import given
from hypothesis import strategies as st

from wharf.proxy.routing import Router, path_matches, strip
from wharf.registry.snapshot import Route


def names(router: Router, host: str, path: str, method: str = "GET", headers=None):
    lookup = {k.encode(): v.encode() for k, v in (headers or {}).items()}.get
    route = router.match(host.encode(), path.encode(), method.encode(), lookup)
    return route.service if route else None


def test_exact_host_then_wildcard_then_any():
    router = Router((Route(service="any"), Route(host="*.example.com", service="wild"),
                     Route(host="api.example.com", service="exact")))
    assert names(router, "api.example.com", "/") == "exact"
    assert names(router, "www.example.com", "/") == "wild"
    assert names(router, "a.b.example.com", "/") == "wild"
    assert names(router, "example.com", "/") == "any"
    assert names(router, "other.org", "/") == "any"


def test_longer_wildcard_first():
    router = Router((Route(host="*.example.com", service="short"),
                     Route(host="*.eu.example.com", service="long")))
    assert names(router, "x.eu.example.com", "/") == "long"
    assert names(router, "x.us.example.com", "/") == "short"


def test_longest_prefix_wins_whatever_the_order():
    router = Router((Route(path="/", service="root"), Route(path="/api", service="api"),
                     Route(path="/api/v2", service="v2")))
    assert names(router, "h", "/api/v2/users") == "v2"
    assert names(router, "h", "/api/v1") == "api"
    assert names(router, "h", "/apix") == "root"
    assert names(router, "h", "/") == "root"


def test_more_conditions_win_then_config_order():
    router = Router((Route(path="/x", service="plain"),
                     Route(path="/x", methods=("POST",), service="post"),
                     Route(path="/x", headers=(("x-v", "2"),), methods=("GET",), service="v2"),
                     Route(path="/x", service="plain-second")))
    assert names(router, "h", "/x", "POST") == "post"
    assert names(router, "h", "/x", "GET", {"x-v": "2"}) == "v2"
    assert names(router, "h", "/x", "GET", {"x-v": "1"}) == "plain"


def test_host_route_beats_a_longer_path_without_host():
    router = Router((Route(path="/api/long", service="path"),
                     Route(host="h.test", path="/", service="host")))
    assert names(router, "h.test", "/api/long") == "host"


def test_no_match():
    assert Router((Route(host="a.test", service="a"),)).match(b"b.test", b"/", b"GET") is None
    assert Router(()).match(b"h", b"/", b"GET") is None


def test_path_matches_whole_segments():
    assert path_matches("/api", "/api") and path_matches("/api", "/api/x")
    assert not path_matches("/api", "/apix")
    assert path_matches("/api/", "/api/x") and path_matches("/", "/anything")


def test_strip():
    assert strip("/api", "/api/users") == "/users"
    assert strip("/api", "/api") == "/"
    assert strip("/api/", "/api/x") == "/x"
    assert strip("/", "/x") == "/x"


@given(st.lists(st.sampled_from(["/", "/a", "/a/b", "/b", "/a/b/c"]), min_size=1),
       st.sampled_from(["/", "/a", "/a/b/c/d", "/b/x", "/c"]))
def test_the_match_is_the_longest_matching_prefix(prefixes, path):
    routes = tuple(Route(path=p, service=p) for p in prefixes)
    got = Router(routes).match(b"h", path.encode(), b"GET")
    matching = [p for p in prefixes if path_matches(p, path)]
    assert (got.service if got else None) == (max(matching, key=len) if matching else None)
