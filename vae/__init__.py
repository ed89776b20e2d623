"""Latent Lab's core: data, AE/VAE models, training, checkpoints and latent-space tools.

Pure PyTorch; never imports Streamlit, so it works from a notebook or the command line.
"""

from .checkpoint import CheckpointError, ModelLibrary, load_checkpoint, save_checkpoint
from .data import DataError, Dataset, load_dataset
from .models import AutoEncoder, ModelConfig, Posterior, build_model

__all__ = [
    "AutoEncoder", "CheckpointError", "DataError", "Dataset", "ModelConfig", "ModelLibrary", "Posterior",
    "build_model", "load_checkpoint", "load_dataset", "save_checkpoint",
]
