"""User accounts, roles, sessions, API tokens and the security audit log."""
