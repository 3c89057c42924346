"""Telegram room: the bot and the Mini App."""
