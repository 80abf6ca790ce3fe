"""Pools: pvesim has none; GET /pools and GET /pools/{poolid} answer as PVE does without pools."""

from pvesim.schema import SUBSET_PATH, ApiSchema


def test_pool_list_is_empty(api):
    assert api.data("GET", "/pools") == []


def test_unknown_pool(api):
    for response in (api.get("/pools", poolid="prod"), api.get("/pools/prod")):
        assert (response.status_code, response.reason) == (500, "pool 'prod' does not exist")
        assert response.json()["message"] == "pool 'prod' does not exist\n"


def test_pool_parameters_are_validated(api):
    response = api.get("/pools", poolid="x")
    assert response.status_code == 400
    assert response.json()["errors"] == {"poolid": "invalid format - pool ID 'x' cannot be shorter than 2 characters\n"}
    response = api.get("/pools", type="qemu")
    assert response.status_code == 400 and set(response.json()["errors"]) == {"poolid"}
    response = api.get("/pools/prod", type="vm")
    assert response.status_code == 400 and set(response.json()["errors"]) == {"type"}
    assert api.get("/pools", frobnicate=1).status_code == 400


def test_pools_are_in_the_vendored_subset():
    subset = ApiSchema.load(SUBSET_PATH)
    assert set(subset.parameters("/pools", "GET")["properties"]) == {"poolid", "type"}
    assert set(subset.parameters("/pools/{poolid}", "GET")["properties"]) == {"poolid", "type"}
