"""Checkout: price a cart against the catalog and create an Order from any channel."""
