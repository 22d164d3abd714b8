"""Sandbox: an in-process Telegram Bot API emulator and a web chat page for trying the bot."""
