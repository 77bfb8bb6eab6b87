"""Two writers racing for one load balancer: exactly one wins, the others get 409."""
from __future__ import annotations

import threading

from lbaas import constants
from lbaas.db.models import LoadBalancer
from tests.conftest import PROJECT


def test_concurrent_updates_never_both_win(api_only, services):
    # An ACTIVE load balancer and no worker: the winner's PENDING_UPDATE is never released.
    with services.db.write() as session:
        lb = LoadBalancer(project_id=PROJECT, provisioning_status=constants.ACTIVE,
                          operating_status=constants.ONLINE, vip_address="198.18.0.9")
        session.add(lb)
    racers = 8
    barrier = threading.Barrier(racers)
    codes: list[int] = []

    def racer(index: int) -> None:
        barrier.wait()
        response = api_only.put(f"/v2/lbaas/loadbalancers/{lb.id}",
                                json={"loadbalancer": {"name": f"racer-{index}"}})
        codes.append(response.status_code)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * (racers - 1)
    with services.db.read() as session:
        stored = session.get(LoadBalancer, lb.id)
        assert stored.provisioning_status == constants.PENDING_UPDATE
        assert stored.name.startswith("racer-")
