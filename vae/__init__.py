"""Latent Lab's core: data, AE/VAE models, training, checkpoints and latent-space tools.

Pure PyTorch; never imports Streamlit, so it works from a notebook or the command line.
The names below are imported on first use, so that a light submodule (the map worker, which
needs only numpy and the projection libraries) does not pay for importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "AutoEncoder": "models", "ModelConfig": "config", "Posterior": "models", "build_model": "models",
    "CheckpointError": "checkpoint", "ModelLibrary": "checkpoint", "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "DataError": "data", "Dataset": "data", "load_dataset": "data",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
