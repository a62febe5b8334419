"""The web entry point: app factory, pages and the JSON API."""
