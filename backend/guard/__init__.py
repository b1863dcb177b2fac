"""What keeps hostile input from costing more than it should: request body limits (size, JSON
nesting, NUL characters) checked before anything parses a body, rate limits per client and per
wallet, and caps on concurrent live streams.

Everything here answers with problem+json: 413 or 400 for a body refused, 429 with
``Retry-After`` for a limit reached. Nothing here touches the database.
"""
