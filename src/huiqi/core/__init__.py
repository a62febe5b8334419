"""Domain-free building blocks: configuration, database, security, money, dates and codes."""
