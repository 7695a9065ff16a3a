"""Models: finding them (built-in, hub, local), loading them, counting and sizing them."""
