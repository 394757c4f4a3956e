"""Whole numbers in query strings: ASCII digits only, everywhere (finding 16 of the hardening issue)."""

from __future__ import annotations

import pytest

from chatkit_backend.errors import ApiError
from chatkit_backend.query_numbers import whole_number

ADMIN_TOKEN = "admin-token-for-query-number-tests-0123"
# '²' passes str.isdigit and then makes int() raise (a 500); '٣' (Arabic-Indic three) was taken as 3.
NOT_ASCII = ["²", "٣", "\uff13", "1²", "-1", "+1", " 1", "1 ", "1.0", "0x10", ""]


@pytest.mark.parametrize("raw", NOT_ASCII)
def test_anything_but_ascii_digits_is_a_validation_error(raw):
    with pytest.raises(ApiError) as caught:
        whole_number({"limit": raw}, "limit", 20)
    assert caught.value.status == 400
    assert caught.value.details == [{"field": "limit", "message": "must be a whole number of at least 1"}]


def test_ascii_digits_within_bounds_are_read_and_absent_means_the_default():
    assert whole_number({"page": "007"}, "page", 1, maximum=10) == 7
    assert whole_number({}, "page", 1, maximum=10) == 1
    for raw in ("11", "9" * 5000):
        with pytest.raises(ApiError, match="Invalid value for: page"):
            whole_number({"page": raw}, "page", 1, maximum=10)


def test_a_number_too_long_for_int_is_above_every_bound_not_a_500():
    assert whole_number({"limit": "9" * 5000}, "limit", 20) >= 10**18
    assert whole_number({"limit": "0" * 5000 + "7"}, "limit", 20) == 7


@pytest.mark.parametrize("raw", ["²", "٣"])
def test_thread_listing_limit_in_unicode_digits_is_a_400_not_a_500(client, raw):
    response = client.get("/api/chatkit/threads", query_string={"limit": raw})
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == "limit"


@pytest.mark.parametrize("field", ["page", "per_page"])
@pytest.mark.parametrize("raw", ["²", "٣"])
def test_admin_error_paging_in_unicode_digits_is_a_400_not_a_500(make_app, field, raw):
    client = make_app(CHATKIT_ADMIN_TOKEN=ADMIN_TOKEN).test_client()
    response = client.get(
        "/api/admin/errors", query_string={field: raw}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 400
    assert [d["field"] for d in response.get_json()["error"]["details"]] == [field]


def test_a_thread_limit_too_long_for_int_is_capped_at_100_not_a_500(make_app, chatkit_config, chatkit_standin):
    response = make_app(chatkit_config).test_client().get("/api/chatkit/threads", query_string={"limit": "9" * 5000})
    assert response.status_code == 200
    [sent] = chatkit_standin.requests_to("/v1/chatkit/threads", "GET")
    assert sent.query["limit"] == "100"
