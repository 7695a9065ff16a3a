"""The built-in demo: the invented Pebble & Pine shop, its tiny model and its datasets.

    python -m studio.demo.build --seed 0 --out assets/tiny-model      # corpus, tokenizer, pretraining
    python -m studio.demo.datasets --seed 0 --out assets/data         # SFT, eval and preference data
    python -m studio.demo.tune_check                                   # LoRA SFT check, prints JSON
    python -m studio.demo.evaluate --model M --data FILE               # exact match, prints JSON
"""
