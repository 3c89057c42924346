"""Tests of the Telegram room."""
