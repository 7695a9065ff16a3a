"""Training stages, one module each, all the same shape: `build_trainer(cfg, run_dir, callbacks)`."""

STAGE_MODULES = {
    "sft": "studio.methods.sft",
    "reward": "studio.methods.reward",
    "dpo": "studio.methods.dpo",
}


def stage_module(stage: str):
    """The module that builds the trainer for `stage`."""
    import importlib

    from studio.errors import StudioError

    if stage not in STAGE_MODULES:
        raise StudioError(f"The {stage} stage is not available yet in this version of the studio.")
    return importlib.import_module(STAGE_MODULES[stage])
