"""The merge of sources: who wins a name, what is reported, how services are named."""

from wharf.config.model import RouteConfig, Server, ServiceConfig
from wharf.registry.table import Issue, Source, merge

A = (Server("127.0.0.1", 9001),)
B = (Server("127.0.0.1", 9002),)


def svc(name: str, servers=A, **keys) -> ServiceConfig:
    return ServiceConfig(name=name, servers=servers, **keys)


def test_the_config_wins_a_service_name_then_the_first_provider():
    table = merge([
        Source("wharf.toml", (RouteConfig(path="/", service="api"),), {"api": svc("api")}),
        Source("conf.d/a.toml", (), {"api": svc("api", B), "web": svc("web", A)}),
        Source("conf.d/b.toml", (RouteConfig(path="/w", service="web"),),
               {"web": svc("web", B)})])
    assert table.services["api"].servers == A and table.services["web"].servers == A
    assert table.conflicts == (
        Issue("conf.d/a.toml", "services.api", "ignored: the service is defined by wharf.toml"),
        Issue("conf.d/b.toml", "services.web", "ignored: the service is defined by "
                                               "conf.d/a.toml"))


def test_a_route_matching_what_an_earlier_source_routes_is_ignored():
    table = merge([Source("wharf.toml", (RouteConfig(path="/x", servers=A),)),
                   Source("conf.d/a.toml", (RouteConfig(path="/x", servers=B),
                                            RouteConfig(path="/x", methods=("GET",),
                                                        servers=B)))])
    assert [(r.path, r.methods) for r in table.routes] == [("/x", ()), ("/x", ("GET",))]
    assert table.origins == ("wharf.toml", "conf.d/a.toml")
    assert table.conflicts == (Issue("conf.d/a.toml", "routes[0]",
                                     "ignored: /x is routed by wharf.toml"),)


def test_within_one_source_route_order_decides_as_before():
    table = merge([Source("wharf.toml", (RouteConfig(path="/x", servers=A),
                                         RouteConfig(path="/x", servers=B)))])
    assert len(table.routes) == 2 and not table.conflicts


def test_a_route_to_a_service_nobody_defines_is_left_out_and_reported():
    table = merge([Source("wharf.toml", services={"api": svc("api")}),
                   Source("conf.d/a.toml", (RouteConfig(path="/x", service="apx"),))])
    assert table.routes == ()
    (issue,) = table.conflicts
    assert issue.key == "routes[0].service" and "no service named 'apx'" in issue.message


def test_every_route_names_its_service_and_only_named_ones_are_in_the_table():
    table = merge([Source("wharf.toml", (
        RouteConfig(path="/a", service="api"), RouteConfig(path="/b", service="api"),
        RouteConfig(path="/w", app="web"), RouteConfig(path="/s", servers=B, retries=0),
        RouteConfig(path="/r", redirect="/")),
        {"api": svc("api"), "unused": svc("unused")})])
    assert [r.service for r in table.routes] == ["api", "api", "app:web", "route:/s", None]
    assert list(table.services) == ["api", "app:web", "route:/s"]
    assert table.services["route:/s"].retries == 0 and table.services["route:/s"].servers == B
    assert table.apps() == {"web"}


def test_a_named_service_keeps_its_name_whatever_the_routes_do():
    def names(*routes: RouteConfig) -> list[str | None]:
        return [r.service for r in merge([Source("wharf.toml", routes,
                                                 {"api": svc("api")})]).routes]

    assert names(RouteConfig(path="/a", service="api")) == ["api"]
    assert names(RouteConfig(path="/old", redirect="/new"), RouteConfig(path="/b", app="x"),
                 RouteConfig(path="/a", service="api")) == [None, "app:x", "api"]


def test_a_file_route_to_an_app_shares_the_configs_anonymous_service():
    table = merge([Source("wharf.toml", (RouteConfig(path="/", app="web"),)),
                   Source("conf.d/a.toml", (RouteConfig(path="/x", app="web"),))])
    assert [r.service for r in table.routes] == ["app:web", "app:web"]
    assert list(table.services) == ["app:web"]
