"""Real counterparts the tests run against on loopback (no patched clients)."""
