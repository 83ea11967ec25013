"""Compliance profiles: versioned per market, the one in force chosen by the dealer's location."""
