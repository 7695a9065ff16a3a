"""Chat with tuned models: loading and merging, streaming generation, evaluation, export."""
