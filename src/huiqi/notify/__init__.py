"""Precise push: notifications, subscriptions, the outbox and its dispatcher (seed art. (三十))."""
