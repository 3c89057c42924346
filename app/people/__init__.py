"""People of the Telegram room: staff (cashiers, managers) and requests for access."""
