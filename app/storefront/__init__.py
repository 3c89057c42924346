"""The shop in the bot: customers buy by themselves and pay by SBP (bp "storefront", /shop/).

- settings.py: the storefront's switch and the shop's pickup / delivery options;
- auth.py, views.py: the customer's Mini App (catalog, cart, contact, delivery, pay, my orders);
- ordering.py: placing a customer's order (re-pricing, stock, rate limit) and its QR;
- fulfilment.py: the shop's side (accepted -> ready / shipped -> handed over, or cancelled
  with a refund), from the managers' Telegram buttons or the admin panel;
- stock.py: a paid order's lines taken off the stock, once;
- photos.py: product photos, resized on upload and served by Kassa;
- banks.py: NSPK's list of SBP bank apps, shipped with Kassa and refreshed by a periodic job;
- notify.py: the customer's and the managers' messages, as jobs.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the storefront's blueprint and jobs (each part adds itself here)."""
    from app.storefront import banks, notify, photos, views

    views.init_app(app)   # the customer's Mini App at /shop/
    photos.init_app(app)  # GET /shop/photos/<product>-<digest>[-thumb].jpg
    banks.init_app(app)   # job storefront.banks_refresh
    notify.init_app(app)  # the customers' and managers' messages, stock, the menu button
