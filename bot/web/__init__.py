"""The web channel: the school's own chat page, served by Shuxiang beside (or instead of)
Telegram. The same dispatcher and handlers answer it; only the Bot API session differs
(``session.WebChannelSession`` keeps the conversation in the database instead of sending it
to Telegram), and the page (``static/``) shows it."""
