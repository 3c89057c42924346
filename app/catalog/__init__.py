"""The shop's catalog: saving products (there is no admin panel yet; services and CLI)."""
