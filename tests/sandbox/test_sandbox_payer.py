"""The payer page, the index page and the JSON control endpoints."""

from __future__ import annotations

from datetime import timedelta

from .helpers import Bank, FakeClock


def page(response) -> str:
    return response.get_data(as_text=True)


def test_payer_page_renders(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="1250.00", paymentDetails="Заказ № 1")
    response = bank.client.get(f"/pay/{qr_id}")
    assert response.status_code == 200
    html = page(response)
    assert "1 250,00 ₽" in html
    assert "Оплатить" in html
    assert "Отклонить" in html
    assert "MA0000000552" in html
    assert "Заказ № 1" in html
    assert "Ожидает оплаты" in html
    assert f"/api/sbp/v1/qr/{qr_id}/image" in html
    assert 'name="amount"' not in html


def test_paying_through_the_form(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="1250.00")
    declined = bank.client.post(f"/pay/{qr_id}", data={"action": "decline"})
    assert declined.status_code == 200
    assert "Платёж отклонён" in page(declined)
    assert bank.qr(qr_id)["qrStatus"] == "NEW"

    paid = bank.client.post(f"/pay/{qr_id}", data={"action": "pay"})
    assert paid.status_code == 200
    assert "Оплата прошла успешно" in page(paid)
    assert bank.qr(qr_id)["qrStatus"] == "PAID"
    state = bank.client.get("/sandbox/state").get_json()
    assert [tx["paymentStatus"] for tx in state["qrs"][0]["transactions"]] == [
        "DECLINED",
        "SUCCESS",
    ]

    html = page(bank.client.get(f"/pay/{qr_id}"))
    assert "уже оплачен" in html
    assert 'value="pay"' not in html
    again = bank.client.post(f"/pay/{qr_id}", data={"action": "pay"})
    assert again.status_code == 409
    assert "уже оплачен" in page(again)


def test_open_sum_static_form(bank: Bank) -> None:
    qr_id = bank.static(order="open")
    html = page(bank.client.get(f"/pay/{qr_id}"))
    assert 'name="amount"' in html
    bad = bank.client.post(f"/pay/{qr_id}", data={"action": "pay", "amount": "12,345"})
    assert bad.status_code == 400
    assert "Неверная сумма" in page(bad)
    missing = bank.client.post(f"/pay/{qr_id}", data={"action": "pay", "amount": ""})
    assert missing.status_code == 409
    assert "Укажите сумму" in page(missing)
    ok = bank.client.post(f"/pay/{qr_id}", data={"action": "pay", "amount": "1 250,50"})
    assert ok.status_code == 200
    assert "1 250,50 ₽" in page(ok)
    assert (
        bank.client.get("/sandbox/state").get_json()["qrs"][0]["transactions"][0]["amount"]
        == "1250.50"
    )


def test_cash_link_page(bank: Bank) -> None:
    link = bank.variable()
    assert "не активна" in page(bank.client.get(f"/pay/{link}"))
    bank.activate(link, amount="300.00", id="cash-1")
    html = page(bank.client.get(f"/pay/{link}"))
    assert "300,00 ₽" in html
    assert "cash-1" in html
    assert "Оплата прошла успешно" in page(bank.client.post(f"/pay/{link}", data={"action": "pay"}))
    assert bank.order("cash-1").get_json()["status"]["value"] == "PAID"


def test_expired_and_cancelled_pages(bank: Bank, fake_clock: FakeClock) -> None:
    expiring = bank.dynamic(order="exp", qrExpirationDate=(
        fake_clock.now() + timedelta(seconds=10)).isoformat())  # fmt: skip
    cancelled = bank.dynamic(order="cnl")
    bank.call("DELETE", f"/api/sbp/v2/qrs/{cancelled}")
    fake_clock.advance(11)
    html = page(bank.client.get(f"/pay/{expiring}"))
    assert "Срок действия QR-кода истёк" in html
    assert 'value="pay"' not in html
    response = bank.client.post(f"/pay/{expiring}", data={"action": "pay"})
    assert response.status_code == 409
    assert "Срок действия QR-кода истёк" in page(response)
    assert "отменён продавцом" in page(bank.client.get(f"/pay/{cancelled}"))


def test_unknown_qr_page(bank: Bank) -> None:
    response = bank.client.get("/pay/AD000")
    assert response.status_code == 404
    assert "не найден" in page(response)
    assert bank.client.post("/pay/AD000", data={"action": "pay"}).status_code == 404


def test_index_lists_recent_qrs(bank: Bank) -> None:
    assert "Пока нет ни одного QR-кода" in page(bank.client.get("/"))
    first = bank.dynamic(order="order-1")
    second = bank.static(order="s-1")
    for path in ("/", "/pay/"):
        html = page(bank.client.get(path))
        assert html.index(f"/pay/{second}") < html.index(f"/pay/{first}")  # newest first


def test_state_and_reset(bank: Bank) -> None:
    qr_id = bank.dynamic(order="order-1", amount="10.00")
    paid = bank.pay(qr_id).get_json()
    state = bank.client.get("/sandbox/state").get_json()
    assert state["qrs"][0]["qrId"] == qr_id
    assert state["qrs"][0]["qrStatus"] == "PAID"
    assert state["qrs"][0]["amount"] == "10.00"
    assert state["qrs"][0]["transactions"][0]["transactionId"] == paid["transactionId"]
    assert state["deliveries"] == []  # no callback URL configured
    assert bank.client.post("/sandbox/reset").get_json() == {"code": "SUCCESS"}
    state = bank.client.get("/sandbox/state").get_json()
    assert state["qrs"] == state["orders"] == state["refunds"] == state["deliveries"] == []
    assert bank.call("GET", f"/api/sbp/v2/qrs/{qr_id}").status_code == 404
    # transaction ids keep growing across resets
    new_qr = bank.dynamic(order="order-1")
    assert bank.pay(new_qr).get_json()["transactionId"] > paid["transactionId"]


def test_control_endpoint_defaults_to_success(bank: Bank) -> None:
    qr_id = bank.dynamic()
    response = bank.client.post(f"/sandbox/qrs/{qr_id}/pay")
    assert response.status_code == 200
    assert response.get_json()["paymentStatus"] == "SUCCESS"
    bad = bank.client.post(f"/sandbox/qrs/{qr_id}/pay", data=b"{", content_type="application/json")
    assert bad.status_code == 400
