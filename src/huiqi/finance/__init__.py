"""Financing matchmaking (政银企对接): products, needs, matching and one-step applications."""
