"""A worker's view of a service: passive ejection, readmission, slow start, retry budget."""

from wharf.proxy.balancers import NOTHING, Load
from wharf.proxy.pool import Pool
from wharf.proxy.services import RETRY_BUDGET_FLOOR, ServiceState
from wharf.registry.snapshot import Backend, Service


def state(*weights: int, **settings) -> ServiceState:
    backends = tuple(Backend("10.0.0.1", 9000 + i, w) for i, w in enumerate(weights))
    service = Service("s", backends, **settings)
    return ServiceState(service, [Load() for _ in backends], [Pool(4, 60) for _ in backends],
                        now=0.0)


def test_consecutive_failures_eject_a_backend_for_a_growing_cool_down():
    svc = state(1, 1, eject_after=3, ejection=10.0)
    bad = svc.loads[0]
    assert not svc.failed(bad, "status 500", 1.0) and not svc.failed(bad, "status 500", 1.0)
    assert svc.failed(bad, "status 500", 1.0)
    assert len(svc.backends) == 1 and bad.ejected_until == 11.0
    assert all(svc.pick(None, NOTHING) == 0 and svc.loads[0] is not bad for _ in range(5))
    svc.tick(11.0)
    assert len(svc.backends) == 2
    for _ in range(3):
        svc.failed(bad, "status 500", 12.0)
    assert bad.ejected_until == 12.0 + 20.0  # the second ejection lasts twice as long


def test_a_success_resets_the_count():
    svc = state(1, 1, eject_after=2)
    svc.failed(svc.loads[0], "x", 0.0)
    svc.succeeded(svc.loads[0])
    assert not svc.failed(svc.loads[0], "x", 0.0)


def test_the_last_backend_is_never_ejected():
    svc = state(1, eject_after=1)
    assert not svc.failed(svc.loads[0], "x", 0.0)
    assert len(svc.backends) == 1


def test_max_conns_skips_full_backends():
    svc = state(1, 1, max_conns=2)
    svc.loads[0].inflight = 2
    assert {svc.pick(None, NOTHING) for _ in range(4)} == {1}
    svc.loads[1].inflight = 2
    assert svc.pick(None, NOTHING) == -1


def test_slow_start_ramps_a_readmitted_backend():
    svc = state(10, 10, slow_start=10.0, eject_after=1)
    assert svc.failed(svc.loads[0], "x", 0.0)  # ejected for 10 s
    svc.tick(10.0)
    assert [b.weight for b in svc.backends] == [1, 640] and svc.ramping
    svc.tick(15.0)
    assert [b.weight for b in svc.backends] == [320, 640]
    svc.tick(20.0)
    assert [b.weight for b in svc.backends] == [10, 10] and not svc.ramping


def picks(svc: ServiceState, n: int) -> list[int]:
    return [svc.pick(None, NOTHING) for _ in range(n)]


def test_a_new_backend_ramps_under_round_robin_across_snapshots():
    old = [Load(joined=-100.0), Load(joined=-100.0)]
    new = Load(joined=0.0)  # a Load outlives snapshots: it knows when its backend joined
    backends = tuple(Backend("10.0.0.1", 9000 + i) for i in range(3))
    service = Service("s", backends, slow_start=10.0)
    svc = ServiceState(service, [*old, new], [Pool(4, 60) for _ in backends], now=2.5)
    chosen = picks(svc, 900)
    assert chosen.count(2) == 100  # a quarter of its weight: 16 in 144, not a third
    svc = ServiceState(service, [*old, new], [Pool(4, 60) for _ in backends], now=10.0)
    assert not svc.ramping and picks(svc, 6) == [0, 1, 2, 0, 1, 2]


def test_hashing_never_ramps():
    backends = tuple(Backend("10.0.0.1", 9000 + i) for i in range(2))
    service = Service("s", backends, slow_start=10.0, balance="ip_hash")
    svc = ServiceState(service, [Load(joined=0.0), Load()], [Pool(4, 60)] * 2, now=1.0)
    assert not svc.ramping and [b.weight for b in svc.backends] == [1, 1]


def test_ejecting_a_backend_from_a_hash_ring_moves_only_its_keys():
    svc = state(1, 1, 1, 1, balance="hash", eject_after=1)
    keys = [f"/user/{i}".encode() for i in range(400)]
    before = {k: svc.backends[svc.pick(k, NOTHING)] for k in keys}
    bad = svc.all_loads[2]
    assert svc.failed(bad, "status 500", 1.0)
    after = {k: svc.backends[svc.pick(k, NOTHING)] for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != svc.all_backends[2])
    assert svc.all_backends[2] not in after.values()


def test_the_hash_ring_outlives_a_snapshot_with_the_same_backends():
    svc = state(1, 1, 1, balance="hash")
    again = ServiceState(svc.service, svc.all_loads, svc.all_pools, 1.0, previous=svc)
    assert again.balancer is svc.balancer


def test_the_retry_budget_caps_retries_to_a_share_of_requests():
    svc = state(1, 1, retry_budget=0.2)
    allowed = sum(svc.may_retry() for _ in range(100))
    assert allowed == int(RETRY_BUDGET_FLOOR)
    for _ in range(50):
        svc.count_request()
    assert 9 <= sum(svc.may_retry() for _ in range(100)) <= 10  # 50 requests x 0.2


def test_an_ejection_by_one_service_reaches_another_sending_to_the_same_backend():
    loads = [Load(), Load()]  # a worker shares a Load per address between services
    backends = tuple(Backend("10.0.0.1", 9000 + i) for i in range(2))
    a = ServiceState(Service("a", backends, eject_after=1, ejection=10.0), loads,
                     [Pool(4, 60) for _ in backends], now=0.0)
    b = ServiceState(Service("b", backends), loads, [Pool(4, 60) for _ in backends], now=0.0)
    assert a.failed(loads[0], "status 500", 1.0)
    b.tick(2.0)
    assert b.loads == [loads[1]]
    a.tick(11.0)  # a's tick readmits it first...
    b.tick(11.5)  # ...and b still notices
    assert b.loads == loads
