"""``trademon bot``: the Telegram companion.

Alertmanager posts the critical and warning notifications to the bot's webhook; the bot
renders them (HTML, escaped, split on line boundaries), delivers them to Telegram with
Ack, silence and runbook buttons (a resolve edits its page), and answers the trader's commands (status, alerts, silences, P&L charts)
by long polling. Modules, one job each:

    config     .env -> BotConfig, errors naming the variable
    telegram   the Bot API client (429 retry_after, 409 Conflict, each chat's flood limit kept)
    pace       Telegram's flood limits per chat: a sliding window on an injected clock
    storm      past 8 pages a minute in a chat, one status message edited at a bounded rate
    render     notification text from the webhook payload: one message, in full, a line each, or counted
    auth       who may act; HMAC-signed callback data
    store      SQLite: the outbox of undelivered notifications and the buttons' references
    webhook    the HTTP endpoint Alertmanager posts to, and the outbox sender
    poller     getUpdates long polling, one poller per token
    handlers   commands and button presses
    pages      a page's life in one message: its text and notes, its buttons by state, the edit of every copy
    acks       acknowledgements watched: resolved ones end their silence, ones ending while firing are announced
    escalation a critical page nobody acknowledged, up the ladder (TRADEMON_BOT_ESCALATE); saved in the store
    channels   the ladder's channels: Pushover's emergency priority, SMS and calls (Twilio-compatible), another chat
    runbooks   monitoring/runbooks.md's sections, as Telegram HTML (the 📖 button, /runbook)
    upstream   Alertmanager API v2 (silences, alerts), Prometheus queries, the alert record
    charts     PNG charts (matplotlib, Agg)
    summary    the daily summary, with an injectable clock
    sessions   next_session_open(now)
    cli        configure/main
"""
