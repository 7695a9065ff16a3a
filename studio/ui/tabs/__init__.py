"""One module per tab; each exposes `build(ctx)` that lays out its components inside a gr.Tab."""
