"""`flask shop storefront on|off`, `flask shop banks refresh` (one line each, a clear line
and a non-zero exit on error) and `flask demo seed` giving the storefront something to show."""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import BankDirectory, Category, Product, ProductPhoto
from app.storefront.photos import photo_url
from app.storefront.settings import storefront_enabled
from tests.storefront.shopadmin_support import audit, members_url, read_image, sandbox


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def test_storefront_on_and_off(app):
    result = run(app, "shop", "storefront", "on")
    assert result.exit_code == 0, result.output
    assert result.output == "storefront on: customers get the shop on /start\n"
    db.session.expire_all()
    assert storefront_enabled()
    (entry,) = audit("shop.settings")
    assert entry.actor_kind == "cli"

    result = run(app, "shop", "storefront", "off")
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("storefront off")
    db.session.expire_all()
    assert not storefront_enabled()
    assert len(audit("shop.settings")) == 2

    result = run(app, "shop", "storefront", "maybe")
    assert result.exit_code == 2
    assert "'maybe' is not one of 'on', 'off'" in result.output


def test_banks_refresh_from_the_sandbox_and_a_clear_line_when_it_is_down(make_app):
    server = sandbox()
    try:
        app = make_app(NSPK_BANKS_URL=members_url(server))
        with app.app_context():
            result = run(app, "shop", "banks", "refresh")
            assert result.exit_code == 0, result.output
            assert result.output.startswith("bank list refreshed: ")
            assert f"banks from {members_url(server)}" in result.output
            db.session.expire_all()
            assert len(db.session.get(BankDirectory, 1).banks) > 10
    finally:
        server.shutdown()
    with app.app_context():
        result = run(app, "shop", "banks", "refresh")  # the sandbox is gone
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith("Error: banks_unavailable: Список банков не обновлён")
        assert "остаётся прежний" in lines[0]
        db.session.expire_all()
        assert len(db.session.get(BankDirectory, 1).banks) > 10


def test_demo_seed_fills_the_storefront_but_leaves_it_off(app):
    result = run(app, "demo", "seed")
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert [c.name for c in db.session.scalars(sa.select(Category).order_by(
        Category.position))] == ["Кофе", "Выпечка", "Зерно"]
    products = list(db.session.scalars(sa.select(Product)))
    published = [p.name for p in products if p.is_published and p.category_id]
    assert len(published) == 4
    # The delivery service is sold at the till; the shop's customers choose it at checkout.
    assert [p.name for p in products if not p.is_published] == ["Доставка по городу"]
    assert any(p.stock_milli for p in products)
    assert any(p.stock_milli is None for p in products)
    with_photo = [p for p in products if photo_url(p)]
    assert len(with_photo) >= 3
    image = app.test_client().get(photo_url(with_photo[0]))
    assert read_image(image.data).size == (800, 800)
    assert not storefront_enabled()  # the operator switches it on

    again = run(app, "demo", "seed")
    assert again.exit_code == 0 and "(0 new products)" in again.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProductPhoto)) == len(
        with_photo)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Category)) == 3
