"""A model's configuration: what `build_model` needs, saved as JSON in every checkpoint.

Plain Python, no torch: the model library lists checkpoints (names, kinds, sizes) from their
metadata alone, so the app's first page draws before torch is imported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

KINDS = ("ae", "vae")
ARCHS = ("mlp", "conv")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; saved as JSON beside the weights."""

    kind: str = "vae"  # "ae" (deterministic) or "vae"
    arch: str = "mlp"  # "mlp" or "conv"
    latent_dim: int = 16
    hidden: tuple[int, ...] = (512, 256)  # MLP hidden sizes (conv: the dense layer's size)
    beta: float = 1.0  # weight on the KL term (beta-VAE); ignored by an AE
    input_noise: float = 0.0  # std of Gaussian noise added to inputs while training (denoising)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Model kind must be one of {KINDS}, not {self.kind!r}.")
        if self.arch not in ARCHS:
            raise ValueError(f"Architecture must be one of {ARCHS}, not {self.arch!r}.")
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int):
            raise ValueError(f"Latent dimension must be a whole number, not {self.latent_dim!r}.")
        if not 1 <= self.latent_dim <= 128:
            raise ValueError(f"Latent dimension must be between 1 and 128, not {self.latent_dim}.")
        hidden = (self.hidden,) if isinstance(self.hidden, int) else tuple(self.hidden)
        if not hidden or len(hidden) > 4:
            raise ValueError("Give between one and four hidden layer sizes.")
        for h in hidden:
            if isinstance(h, bool) or not isinstance(h, int) or not 8 <= h <= 4096:
                raise ValueError(f"Hidden layer sizes must be whole numbers from 8 to 4096, not {h!r}.")
        object.__setattr__(self, "hidden", hidden)
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and 0 <= self.beta <= 100):
            raise ValueError(f"Beta must be a number from 0 to 100, not {self.beta!r}.")
        if not (isinstance(self.input_noise, (int, float)) and 0 <= self.input_noise <= 1):
            raise ValueError(f"Input noise must be a number from 0 to 1, not {self.input_noise!r}.")
        object.__setattr__(self, "beta", float(self.beta))
        object.__setattr__(self, "input_noise", float(self.input_noise))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        if not isinstance(d, dict):
            raise ValueError("The model config must be a JSON object.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown model config fields: {', '.join(unknown)}.")
        return cls(**d)

    @property
    def label(self) -> str:
        return f"{self.kind.upper()} · {self.arch.upper()} · {self.latent_dim}-d"

    @property
    def has_prior(self) -> bool:
        """Whether the model was trained towards a prior N(0, I) (a VAE): its codes can be sampled from
        it, its region is the prior's mass, its test nats include a KL term. An AE has none."""
        return self.kind == "vae"


def parse_hidden(text: str) -> tuple[int, ...]:
    """'512, 256' -> (512, 256): the one parser of hidden sizes (the training form and the command
    line). Anything else raises ValueError with a sentence; the sizes' range is ModelConfig's."""
    parts = [p.strip() for p in str(text).replace(";", ",").split(",") if p.strip()]
    try:
        hidden = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"Hidden sizes must be whole numbers separated by commas, like 512,256 (not {text!r}).") \
            from None
    if not hidden:
        raise ValueError("Give at least one hidden layer size, like 512,256.")
    return hidden
