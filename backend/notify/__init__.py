"""Notifications: outgoing signed webhooks to organizers and e-mailed order receipts.

Other domains call :func:`backend.notify.service.publish` inside their own transaction; the
worker delivers what it wrote to the outbox (:mod:`backend.notify.delivery`).
"""
