"""One spec per lifter: everything the rest of the code knows about an architecture.

A :class:`LifterSpec` holds the model class, its presets (constructor keyword
arguments as data), the name of the shipped default weights, which constructor
argument sets the window length (``None`` for single-frame models), and the
training defaults (optimiser, loss). The CLI's ``--lifter``/``--arch``/``--preset``
choices, weight loading, the :class:`~video3d.lift.lifter.Lifter` window and the
trainer all read :data:`LIFTERS`, so adding a lifter means adding one entry here
(plus its tests).

The registry itself imports neither torch nor the model code: entries name
their model class as ``"module:Class"`` (imported on first build) and refer
to the training losses (:mod:`video3d.train.loss`) through small wrappers that
import that module only when training. So ``video3d --help`` stays fast and
nothing from the training packages is imported on the ``video3d run`` path.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from video3d.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["LifterSpec", "LIFTERS", "DEFAULT_LIFTER", "get_lifter", "register", "model_config", "build_model",
           "preset_names"]

Loss = Callable[["Tensor", "Tensor"], "Tensor"]


@dataclass(frozen=True)
class LifterSpec:
    """Everything about one lifter architecture.

    Attributes:
        name: the ``--lifter`` / ``--arch`` value and the ``arch`` of model cards.
        model: the ``nn.Module`` class (or any factory taking the preset's
            kwargs), or its ``"module:Class"`` path, imported on first use.
        presets: preset name -> constructor keyword arguments.
        default_preset: preset used when none is named (and for cards without one).
        default_weights: stem of the shipped weights file in ``weights_dir()``.
        window_arg: constructor argument that sets the window length in frames
            (e.g. ``"num_frames"``); ``None`` for single-frame models (window 1).
        summary: one line for ``--help``.
        loss: training loss ``(pred, target) -> scalar``, both (B, T, 17, 3) metres.
        loss_label: how the model card names that loss.
        training: training defaults: preset (``video3d train``'s default),
            optimizer ("adam" | "adamw"), lr, weight_decay, lr_decay (per
            epoch), batch_size.
        resize_state: optional ``(state_dict, window) -> state_dict`` that fits
            weights trained on another window length (``train --init``).
    """

    name: str
    model: Callable[..., "nn.Module"] | str
    presets: Mapping[str, Mapping[str, Any]]
    default_preset: str
    default_weights: str
    summary: str
    loss: Loss
    loss_label: str
    training: Mapping[str, Any]
    window_arg: str | None = None
    resize_state: Callable[[dict, int], dict] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def config(self, preset: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Constructor kwargs of ``presets[preset]`` updated with ``overrides`` (a fresh dict).

        Raises UserError for an unknown preset.
        """
        preset_l = (preset or self.default_preset).lower()
        if preset_l not in self.presets:
            raise UserError(f"unknown preset {preset!r} for {self.name}; choose one of {', '.join(self.presets)}")
        config = copy.deepcopy(dict(self.presets[preset_l]))
        config.update(overrides)
        return config

    @property
    def model_class(self) -> Callable[..., "nn.Module"]:
        """:attr:`model`, imported if it is given as ``"module:Class"``."""
        if not isinstance(self.model, str):
            return self.model
        module, _, attr = self.model.partition(":")
        return getattr(importlib.import_module(module), attr)

    def build(self, preset: str | None = None, **overrides: Any) -> "nn.Module":
        """A freshly initialised model of ``preset`` with keyword ``overrides``."""
        config = self.config(preset, **overrides)
        try:
            return self.model_class(**config)
        except TypeError as err:  # an override the constructor does not take
            raise UserError(f"bad argument for {self.name}: {err}") from None

    def window(self, config: Mapping[str, Any] | None = None) -> int:
        """Frames per model call for a model built with ``config`` (1 for single-frame models)."""
        if self.window_arg is None:
            return 1
        config = config or {}
        if self.window_arg in config:
            return int(config[self.window_arg])
        return int(self.presets[self.default_preset][self.window_arg])


def _ktpformer_loss(pred: "Tensor", target: "Tensor") -> "Tensor":
    from video3d.train.loss import ktpformer_loss
    return ktpformer_loss(pred, target)


def _mse_loss(pred: "Tensor", target: "Tensor") -> "Tensor":
    from video3d.train.loss import mse_loss
    return mse_loss(pred, target)


def _resize_ktpformer(state: dict, num_frames: int) -> dict:
    from video3d.models.resize import resize_ktpformer_state
    return resize_ktpformer_state(state, num_frames)


#: name -> spec, in the order the CLI lists them (the first is the default).
LIFTERS: dict[str, LifterSpec] = {}


def register(spec: LifterSpec) -> LifterSpec:
    """Add ``spec`` to :data:`LIFTERS` (replacing one of the same name); returns it."""
    if spec.default_preset not in spec.presets:
        raise ValueError(f"{spec.name}: default preset {spec.default_preset!r} is not one of its presets")
    LIFTERS[spec.name] = spec
    return spec


register(LifterSpec(
    name="ktpformer",
    model="video3d.models.ktpformer:KTPFormer",
    summary="ktpformer: 243-frame windows, smoothest",
    presets={
        # CVPR 2024 release: 35.2 M parameters, ~153 G MACs per 243-frame window.
        "paper": dict(num_frames=243, embed_dim=512, depth=8, num_heads=8, mlp_ratio=2.0,
                      qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
        # Full 243-frame context at 1/8 of the width: CPU training.
        "small": dict(num_frames=243, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0,
                      qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.05),
        # Full 243-frame context, width 48, 3 pairs: what trains well in about an
        # hour on a 2-core CPU (the shipped weights); ~3x cheaper per step than "small".
        "cpu": dict(num_frames=243, embed_dim=48, depth=3, num_heads=4, mlp_ratio=2.0,
                    qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0),
        # Short windows, fastest to train and run; for quick experiments.
        "tiny": dict(num_frames=81, embed_dim=32, depth=3, num_heads=4, mlp_ratio=2.0,
                     qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0),
    },
    default_preset="paper",
    default_weights="ktpformer-mocap",
    window_arg="num_frames",
    # REFERENCE §3: L = Lw + 0.5 Ltc + 2.0 Lv, AdamW lr 8e-5 (decay 0.99/epoch), weight decay 0.1.
    loss=_ktpformer_loss,
    loss_label="L_w + 0.5 L_tc + 2.0 L_v",
    training={"preset": "small", "optimizer": "adamw", "lr": 8e-5, "weight_decay": 0.1, "lr_decay": 0.99, "batch_size": 8},
    resize_state=_resize_ktpformer,
))

register(LifterSpec(
    name="ampose",
    model="video3d.models.ampose:AMPose",
    summary="ampose: single frames, fastest",
    presets={
        # ICASSP 2023: width 512, 5 stages; 18.4 M parameters (paper: 18.3 M).
        "paper": dict(embed_dim=512, depth=5, num_heads=8, mlp_ratio=2.0,
                      drop_rate=0.0, drop_path_rate=0.0),
        "small": dict(embed_dim=128, depth=4, num_heads=8, mlp_ratio=2.0,
                      drop_rate=0.0, drop_path_rate=0.0),
    },
    default_preset="paper",
    default_weights="ampose-mocap",
    # REFERENCE §4: MSE, Adam lr 2.5e-5 (decay 0.98/epoch).
    loss=_mse_loss,
    loss_label="MSE",
    training={"preset": "small", "optimizer": "adam", "lr": 2.5e-5, "weight_decay": 0.0, "lr_decay": 0.98, "batch_size": 128},
))

#: The lifter used when neither ``--lifter`` nor ``--weights`` names one.
DEFAULT_LIFTER = "ampose"


def get_lifter(name: str) -> LifterSpec:
    """The spec called ``name`` (case-insensitive); UserError naming the choices otherwise."""
    spec = LIFTERS.get(str(name).lower())
    if spec is None:
        raise UserError(f"unknown lifter {name!r}; choose one of {', '.join(LIFTERS)}")
    return spec


def preset_names() -> list[str]:
    """Every preset name of every lifter, in registry order, without repeats."""
    return list(dict.fromkeys(p for spec in LIFTERS.values() for p in spec.presets))


def model_config(arch: str, preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """``get_lifter(arch).config(preset, **overrides)``."""
    return get_lifter(arch).config(preset, **overrides)


def build_model(arch: str, preset: str | None = None, **overrides: Any) -> "nn.Module":
    """Build ``arch`` with ``preset``'s kwargs and keyword ``overrides`` (e.g. ``num_frames=27``)."""
    return get_lifter(arch).build(preset, **overrides)
