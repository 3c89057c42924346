"""Demo data for `flask demo seed`: a coffee shop's catalog and the demo cashier (who
opens the Mini App in demo mode: a development install without a bot token), and what the
storefront shows: categories, published products (stock counted on some) with photos drawn
here. The storefront itself stays as the operator set it (`flask shop storefront on`)."""

from __future__ import annotations

import io

import sqlalchemy as sa
from PIL import Image, ImageDraw

from app.catalog.services import create_product
from app.extensions import db
from app.models import Product
from app.people.services import demo_cashier
from app.storefront import categories as shelves
from app.storefront import photos

DEMO_CATEGORIES = ["Кофе", "Выпечка", "Зерно"]

# name, price, vat, payment object, measure; the storefront's category (None: not in the
# storefront), description,
# stock in thousandths of the measure (None: not counted), the photo (kind, colour) or None.
DEMO_PRODUCTS = [
    ("Капучино 300 мл", 22000, "none", "commodity", "piece", "Кофе",
     "Двойной эспрессо и молоко с плотной пенкой.", None, ("cup", (176, 122, 82))),
    ("Американо 250 мл", 16000, "none", "commodity", "piece", "Кофе",
     "Эспрессо, разбавленный горячей водой.", None, ("cup", (92, 60, 40))),
    ("Круассан с миндалём", 18500, "none", "commodity", "piece", "Выпечка",
     "Свежий, с миндальным кремом и лепестками миндаля.", 12000, ("croissant", (222, 170, 90))),
    ("Кофе в зёрнах, Эфиопия", 320000, "none", "commodity", "kilogram", "Зерно",
     "Светлая обжарка, ноты цитруса и жасмина. Цена за килограмм.", 5500, ("bean", (120, 80, 60))),
    # Sold at the till only: the storefront's customers choose delivery at checkout.
    ("Доставка по городу", 25000, "none", "service", "piece", None, None, None, None),
]

def draw_photo(kind: str, colour: tuple[int, int, int]) -> bytes:
    """A simple product picture (PNG): a gradient of the colour, a white plate and on it a
    cup, a croissant or a coffee bean (`kind`), drawn without fonts."""
    size = 900
    picture = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(picture)
    for y in range(size):  # a soft vertical gradient
        shade = tuple(min(255, c + (255 - c) * y // (size * 2)) for c in colour)
        draw.line([(0, y), (size, y)], fill=shade)
    draw.ellipse([120, 120, size - 120, size - 120], fill=(255, 255, 255),
                 outline=(60, 40, 30), width=10)
    dark = tuple(c * 2 // 3 for c in colour)
    if kind == "cup":
        draw.rounded_rectangle([300, 330, 560, 600], radius=40, fill=colour,
                               outline=dark, width=8)
        draw.arc([510, 380, 640, 520], start=-90, end=90, fill=dark, width=22)
        draw.ellipse([310, 300, 550, 370], fill=(240, 225, 205), outline=dark, width=8)
        draw.ellipse([250, 590, 660, 650], fill=(235, 235, 235), outline=dark, width=6)
    elif kind == "croissant":
        draw.pieslice([230, 300, 670, 700], start=180, end=360, fill=colour,
                      outline=dark, width=8)
        for x in (330, 410, 490, 570):
            draw.line([(x, 330), (x - 20, 500)], fill=dark, width=10)
    else:  # a coffee bean
        draw.ellipse([300, 240, 600, 660], fill=colour, outline=dark, width=8)
        draw.arc([360, 240, 540, 660], start=100, end=260, fill=dark, width=14)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def _category_ids() -> dict[str, int]:
    known = {category.name: category.id for category in shelves.categories()}
    for name in DEMO_CATEGORIES:
        if name not in known:
            known[name] = shelves.add_category(name).id
    return known

def seed() -> int:
    """Add the demo products that are missing (each checked and committed by the catalog
    service), with their categories and photos, and the demo cashier. Returns how many
    products were added."""
    demo_cashier()
    category_ids = _category_ids()
    existing = set(db.session.scalars(sa.select(Product.name)))
    added = 0
    for name, price, vat, payment_object, measure, category, description, stock, photo \
            in DEMO_PRODUCTS:
        if name in existing:
            continue
        product = create_product(name=name, price_kopecks=price, vat=vat,
                                 payment_object=payment_object, measure=measure,
                                 is_published=category is not None,
                                 category_id=category_ids.get(category),
                                 description=description, stock_milli=stock)
        if photo is not None:
            photos.save_photo(product.id, draw_photo(*photo))
        added += 1
    db.session.rollback()  # end the read-only transaction when nothing was added
    return added

