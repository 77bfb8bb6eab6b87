"""Pool members: create, show, list, update, delete and the batch update."""
from __future__ import annotations

import uuid

import pytest

from tests.helpers import PROJECT, wait_for
from tests.helpers.api import (
    amphora_updates_held,
    create_lb,
    create_member,
    create_pool,
    fault,
    wait_active,
    wait_gone,
    wait_lb_active,
)


@pytest.fixture
def lb(client):
    return create_lb(client)


@pytest.fixture
def pool(client, lb):
    return create_pool(client, lb["id"])


def members_path(pool_id: str) -> str:
    return f"/v2/lbaas/pools/{pool_id}/members"


def post_member(client, pool_id: str, **body):
    return client.post(members_path(pool_id), json={"member": body})


def addresses(client, pool_id: str) -> dict[str, dict]:
    members = client.get(members_path(pool_id)).json()["members"]
    return {member["address"]: member for member in members}


def test_create_member_goes_pending_then_active(client, lb, pool):
    response = post_member(client, pool["id"], address="192.0.2.10", protocol_port=8080,
                           name="web-1", tags=["blue"])
    assert response.status_code == 201
    member = response.json()["member"]
    assert member["provisioning_status"] == "PENDING_CREATE"
    assert member["operating_status"] == "NO_MONITOR"
    assert member["address"] == "192.0.2.10" and member["protocol_port"] == 8080
    assert member["weight"] == 1 and member["backup"] is False
    assert member["admin_state_up"] is True
    assert member["vnic_type"] == "normal"
    assert member["project_id"] == PROJECT
    assert member["tags"] == ["blue"]
    assert "pool_id" not in member
    active = wait_active(client, f"{members_path(pool['id'])}/{member['id']}", "member")
    assert active["name"] == "web-1"
    assert wait_lb_active(client, lb["id"])["provisioning_status"] == "ACTIVE"
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["provisioning_status"] \
        == "ACTIVE"


def test_member_address_is_normalized(client, pool):
    member = create_member(client, pool["id"], "2001:DB8:0:0::1")
    assert member["address"] == "2001:db8::1"


def test_member_on_reserved_address_is_rejected(client, pool):
    text = fault(post_member(client, pool["id"], address="169.254.169.254", protocol_port=80), 400)
    assert text == "169.254.169.254 is not a valid option for member address"


def test_reserved_addresses_come_from_the_configuration(client, settings, pool):
    settings.networking.reserved_ips = ["2001:db8::7", "203.0.113.8"]
    text = fault(post_member(client, pool["id"], address="2001:db8:0::7", protocol_port=80), 400)
    assert text == ("2001:0DB8:0000:0000:0000:0000:0000:0007 is not a valid option for "
                    "member address")
    create_member(client, pool["id"], "203.0.113.7")  # one the list does not name: accepted


def test_member_requesting_sriov_is_rejected_without_a_flavor(client, pool):
    text = fault(post_member(client, pool["id"], address="192.0.2.10", protocol_port=80,
                             request_sriov=True), 400)
    assert text == "The load balancer flavor does not allow SR-IOV member ports."


def test_same_address_and_port_twice_is_a_conflict(client, pool):
    create_member(client, pool["id"], "192.0.2.10", 80)
    text = fault(post_member(client, pool["id"], address="192.0.2.10", protocol_port=80), 409)
    assert text == "Another member on this pool is already using ip 192.0.2.10 on protocol_port 80"
    create_member(client, pool["id"], "192.0.2.10", 81)


@pytest.mark.parametrize("field, value", [
    ("weight", 257), ("weight", -1), ("protocol_port", 0), ("protocol_port", 65536),
    ("monitor_port", 0), ("address", "192.0.2.300"), ("monitor_address", "nope"),
    ("subnet_id", "not-a-uuid"),
])
def test_out_of_range_fields_are_rejected(client, pool, field, value):
    body = {"address": "192.0.2.10", "protocol_port": 80, field: value}
    text = fault(post_member(client, pool["id"], **body), 400)
    assert field in text


def test_weight_zero_and_monitor_endpoint_are_accepted(client, pool):
    member = create_member(client, pool["id"], "192.0.2.10", weight=0, backup=True,
                           monitor_address="192.0.2.11", monitor_port=9000,
                           subnet_id=str(uuid.uuid4()))
    assert (member["weight"], member["backup"]) == (0, True)
    assert (member["monitor_address"], member["monitor_port"]) == ("192.0.2.11", 9000)


def test_member_of_unknown_pool_is_404(client):
    missing = str(uuid.uuid4())
    assert fault(post_member(client, missing, address="192.0.2.10", protocol_port=80), 404) == \
        f"Pool {missing} not found."
    fault(client.get(members_path(missing)), 404)


def test_member_is_only_found_through_its_pool(client, lb, pool):
    other = create_pool(client, lb["id"])
    member = create_member(client, pool["id"], "192.0.2.10")
    text = fault(client.get(f"{members_path(other['id'])}/{member['id']}"), 404)
    assert text == f"Member {member['id']} not found."
    fault(client.delete(f"{members_path(other['id'])}/{member['id']}"), 404)


def test_member_change_while_load_balancer_busy_is_409(client, drivers, lb, pool):
    member = create_member(client, pool["id"], "192.0.2.10")
    with amphora_updates_held(drivers):
        client.put(f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}})
        expected = f"Load Balancer {lb['id']} is immutable and cannot be updated."
        assert fault(post_member(client, pool["id"], address="192.0.2.11",
                                 protocol_port=80), 409) == expected
        path = f"{members_path(pool['id'])}/{member['id']}"
        assert fault(client.put(path, json={"member": {"weight": 5}}), 409) == expected
        assert fault(client.delete(path), 409) == expected
        assert fault(client.put(members_path(pool["id"]), json={"members": []}), 409) == expected
    wait_lb_active(client, lb["id"])
    assert client.get(path).json()["member"]["weight"] == 1


def test_member_of_a_pool_in_error_is_409(client, drivers, lb, pool):
    def broken(load_balancer, amphora):
        raise RuntimeError("amphora unreachable")

    drivers.amphora.update = broken
    client.put(f"/v2/lbaas/pools/{pool['id']}", json={"pool": {"name": "renamed"}})
    wait_for(lambda: client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"],
             "provisioning_status", "ERROR")
    wait_lb_active(client, lb["id"])
    text = fault(post_member(client, pool["id"], address="192.0.2.10", protocol_port=80), 409)
    assert text == f"Pool {pool['id']} is immutable and cannot be updated."


def test_failed_member_create_leaves_member_error_and_parents_active(client, drivers, lb, pool):
    def broken(load_balancer, amphora):
        raise RuntimeError("amphora unreachable")

    drivers.amphora.update = broken
    member = post_member(client, pool["id"], address="192.0.2.10",
                         protocol_port=80).json()["member"]
    path = f"{members_path(pool['id'])}/{member['id']}"
    wait_for(lambda: client.get(path).json()["member"], "provisioning_status", "ERROR")
    assert wait_lb_active(client, lb["id"])["provisioning_status"] == "ACTIVE"
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["provisioning_status"] \
        == "ACTIVE"


def test_update_member_returns_new_values_and_settles(client, pool):
    member = create_member(client, pool["id"], "192.0.2.10", name="a")
    path = f"{members_path(pool['id'])}/{member['id']}"
    response = client.put(path, json={"member": {
        "name": "b", "weight": 7, "backup": True, "admin_state_up": False,
        "monitor_address": "192.0.2.99", "monitor_port": 9090, "tags": ["x"]}})
    assert response.status_code == 200
    body = response.json()["member"]
    assert body["provisioning_status"] == "PENDING_UPDATE"
    assert (body["name"], body["weight"], body["backup"], body["admin_state_up"]) == \
        ("b", 7, True, False)
    assert (body["monitor_address"], body["monitor_port"], body["tags"]) == \
        ("192.0.2.99", 9090, ["x"])
    assert wait_active(client, path, "member")["weight"] == 7


def test_update_member_null_resets_to_default(client, pool):
    member = create_member(client, pool["id"], "192.0.2.10", name="a", weight=9, backup=True,
                           tags=["x"], admin_state_up=False)
    path = f"{members_path(pool['id'])}/{member['id']}"
    body = client.put(path, json={"member": {"weight": None, "backup": None, "name": None,
                                             "tags": None, "admin_state_up": None}}
                      ).json()["member"]
    assert (body["weight"], body["backup"], body["name"], body["tags"]) == (1, False, "", [])
    assert body["admin_state_up"] is True


def test_member_address_and_port_cannot_be_updated(client, pool):
    member = create_member(client, pool["id"], "192.0.2.10")
    path = f"{members_path(pool['id'])}/{member['id']}"
    assert "address" in fault(client.put(path, json={"member": {"address": "192.0.2.11"}}), 400)
    assert "protocol_port" in fault(client.put(path, json={"member": {"protocol_port": 1}}), 400)


def test_delete_member_removes_it(client, lb, pool):
    member = create_member(client, pool["id"], "192.0.2.10")
    path = f"{members_path(pool['id'])}/{member['id']}"
    assert client.delete(path).status_code == 204
    wait_gone(client, path)
    wait_lb_active(client, lb["id"])
    assert client.get(members_path(pool["id"])).json()["members"] == []


def test_member_quota_is_enforced(client, settings, pool):
    settings.quotas.default_member_quota = 1
    member = create_member(client, pool["id"], "192.0.2.10")
    text = fault(post_member(client, pool["id"], address="192.0.2.11", protocol_port=80), 403)
    assert text == "Quota has been met for resources: member"
    path = f"{members_path(pool['id'])}/{member['id']}"
    client.delete(path)
    wait_gone(client, path)
    create_member(client, pool["id"], "192.0.2.11")


def test_list_is_scoped_to_the_pool(client, lb, pool):
    other = create_pool(client, lb["id"])
    create_member(client, pool["id"], "192.0.2.10")
    create_member(client, other["id"], "192.0.2.20")
    body = client.get(members_path(pool["id"])).json()
    assert [m["address"] for m in body["members"]] == ["192.0.2.10"]
    assert body["members_links"] == []


def test_list_sorts_filters_pages_and_selects_fields(client, pool):
    for i, tag in ((1, "a"), (2, "b"), (3, "a")):
        create_member(client, pool["id"], f"192.0.2.{i}", name=f"m{i}", weight=i, tags=[tag])
    path = members_path(pool["id"])
    by_name = client.get(path, params={"sort": "name:desc"}).json()["members"]
    assert [m["name"] for m in by_name] == ["m3", "m2", "m1"]
    assert [m["name"] for m in client.get(path, params={"weight": 2}).json()["members"]] == ["m2"]
    assert [m["name"] for m in client.get(path, params={"address": "192.0.2.3"}).json()[
        "members"]] == ["m3"]
    tagged = client.get(path, params={"tags": "a", "sort": "name"}).json()["members"]
    assert [m["name"] for m in tagged] == ["m1", "m3"]
    first = client.get(path, params={"limit": 2, "sort": "name"}).json()
    assert [m["name"] for m in first["members"]] == ["m1", "m2"]
    assert [link["rel"] for link in first["members_links"]] == ["next"]
    rest = client.get(path, params={"limit": 2, "sort": "name",
                                    "marker": first["members"][-1]["id"]}).json()
    assert [m["name"] for m in rest["members"]] == ["m3"]
    fields = client.get(path, params={"fields": ["id", "address"]}).json()["members"]
    assert all(set(m) == {"id", "address"} for m in fields)
    assert fault(client.get(path, params={"bogus": "1"}), 400) == \
        "One or more arguments are either duplicate or invalid."


def test_show_selects_fields(client, pool):
    member = create_member(client, pool["id"], "192.0.2.10")
    body = client.get(f"{members_path(pool['id'])}/{member['id']}",
                      params={"fields": "id,weight"}).json()
    assert body == {"member": {"id": member["id"], "weight": 1}}


def batch(client, pool_id: str, members: list[dict], **params):
    return client.put(members_path(pool_id), json={"members": members}, params=params)


def test_batch_update_creates_updates_and_deletes(client, lb, pool):
    create_member(client, pool["id"], "192.0.2.1", weight=5, name="gone")
    kept = create_member(client, pool["id"], "192.0.2.2", weight=5, name="kept")
    response = batch(client, pool["id"], [
        {"address": "192.0.2.2", "protocol_port": 80, "name": "kept", "weight": 9},
        {"address": "192.0.2.3", "protocol_port": 80, "name": "new"},
    ])
    assert response.status_code == 202
    assert response.content == b""
    wait_lb_active(client, lb["id"])
    wait_for(lambda: {"count": len(addresses(client, pool["id"]))}, "count", 2)
    members = addresses(client, pool["id"])
    assert set(members) == {"192.0.2.2", "192.0.2.3"}
    assert members["192.0.2.2"]["id"] == kept["id"]
    assert members["192.0.2.2"]["weight"] == 9
    assert members["192.0.2.3"]["name"] == "new"
    assert {m["provisioning_status"] for m in members.values()} == {"ACTIVE"}


def test_batch_entry_for_existing_member_resets_omitted_defaults(client, lb, pool):
    create_member(client, pool["id"], "192.0.2.1", weight=5, backup=True, name="keep-name")
    batch(client, pool["id"], [{"address": "192.0.2.1", "protocol_port": 80}])
    wait_lb_active(client, lb["id"])
    member = addresses(client, pool["id"])["192.0.2.1"]
    assert (member["weight"], member["backup"], member["name"]) == (1, False, "keep-name")


def test_batch_additive_only_keeps_missing_members(client, lb, pool):
    create_member(client, pool["id"], "192.0.2.1")
    response = batch(client, pool["id"], [{"address": "192.0.2.2", "protocol_port": 80}],
                     additive_only="true")
    assert response.status_code == 202
    wait_lb_active(client, lb["id"])
    wait_for(lambda: {"count": len(addresses(client, pool["id"]))}, "count", 2)


def test_batch_with_the_same_member_twice_is_rejected(client, pool):
    entry = {"address": "192.0.2.1", "protocol_port": 80}
    text = fault(batch(client, pool["id"], [entry, {**entry, "weight": 3}]), 400)
    assert text == ("Validation failure: Member with address 192.0.2.1 and protocol_port 80 "
                    "is specified more than once.")


def test_batch_rejects_reserved_addresses(client, pool):
    text = fault(batch(client, pool["id"], [{"address": "169.254.169.254",
                                             "protocol_port": 80}]), 400)
    assert text == "169.254.169.254 is not a valid option for member address"


def test_batch_without_changes_does_not_lock(client, drivers, lb, pool):
    create_member(client, pool["id"], "192.0.2.1")
    with amphora_updates_held(drivers):
        assert batch(client, pool["id"], [], additive_only="1").status_code == 202
        assert client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"][
            "provisioning_status"] == "ACTIVE"


def test_batch_quota_counts_the_net_increase(client, settings, lb, pool):
    settings.quotas.default_member_quota = 2
    create_member(client, pool["id"], "192.0.2.1")
    create_member(client, pool["id"], "192.0.2.2")
    swapped = [{"address": "192.0.2.3", "protocol_port": 80},
               {"address": "192.0.2.4", "protocol_port": 80}]
    assert batch(client, pool["id"], swapped).status_code == 202
    wait_lb_active(client, lb["id"])
    text = fault(batch(client, pool["id"], [{"address": "192.0.2.5", "protocol_port": 80}],
                       additive_only="true"), 403)
    assert text == "Quota has been met for resources: member"


def test_batch_on_unknown_pool_is_404(client):
    missing = str(uuid.uuid4())
    assert fault(batch(client, missing, []), 404) == f"Pool {missing} not found."


def test_udp_member_must_share_the_vip_ip_family(client, lb):
    listener = client.post("/v2/lbaas/listeners", json={"listener": {
        "loadbalancer_id": lb["id"], "protocol": "UDP", "protocol_port": 53}})
    assert listener.status_code == 201, listener.text
    wait_lb_active(client, lb["id"])
    pool = create_pool(client, lb["id"], "UDP", listener_id=listener.json()["listener"]["id"])
    pool = client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]
    wrong = "2001:db8::1" if ":" not in lb["vip_address"] else "192.0.2.1"
    text = fault(post_member(client, pool["id"], address=wrong, protocol_port=53), 501)
    assert text == ("Provider 'amphora' does not support a requested option: This provider "
                    "doesn't support mixing IPv4 and IPv6 addresses for its VIP and members "
                    "in UDP load balancers.")
