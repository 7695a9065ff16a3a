"""Training stages, one module each, all the same shape: `build_trainer(cfg, run_dir, callbacks)`.

Which module serves which stage is declared in studio.stages, with the rest of what a stage is.
"""
