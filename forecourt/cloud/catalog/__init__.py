"""Catalog (features, package versions) and entitlements (purchases, subscriptions, trials)."""
