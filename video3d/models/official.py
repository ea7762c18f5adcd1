"""Load the official KTPFormer checkpoint into :class:`~video3d.models.ktpformer.KTPFormer`.

The released training script saves ``{'epoch', 'lr', 'optimizer',
'model_pos': state_dict}`` with the model wrapped in ``DataParallel``, so
every key starts with ``module.``. At T = 243, C = 512 the state dict holds
229 tensors (REFERENCE §3); :func:`official_key_names_and_shapes` rebuilds
that layout for any size.

Key map (official -> video3d), applied after stripping ``module.`` (and an
optional ``model_pos.`` wrapper); rules are tried in order, first match wins:

=============================================  ===================================
official                                        video3d
=============================================  ===================================
kpattention.attn.kpa.gconv.{W,M,adj2,bias}      kpa.embed.gconv.*
kpattention.attn.kpa.bn.*                       kpa.embed.bn.*
kpattention.attn.Spatial_pos_embed              kpa.pos_embed
kpattention.attn.norm1.*                        kpa.norm1.*
kpattention.attn.{qkv,proj}.*                   kpa.attn.{qkv,proj}.*
kpattention.{norm2,mlp.fc1,mlp.fc2}.*           kpa.{norm2,mlp.fc1,mlp.fc2}.*
tpattention.attn.tpa.gconv{1,2}.gconv.*         tpa.embed.layer{1,2}.gconv.*
tpattention.attn.tpa.gconv{1,2}.bn.*            tpa.embed.layer{1,2}.bn.*
tpattention.attn.Temporal_pos_embed             tpa.pos_embed
tpattention.attn.norm1 / qkv / proj             tpa.norm1 / tpa.attn.qkv / proj
tpattention.{norm2,mlp.fc1,mlp.fc2}.*           tpa.{norm2,mlp.fc1,mlp.fc2}.*
STEblocks.i.*                                   spatial_blocks.i.*
TTEblocks.i.*                                   temporal_blocks.i.*
Spatial_norm.* / Temporal_norm.*                spatial_norm.* / temporal_norm.*
head.0.* / head.1.*                             head_norm.* / head.*
=============================================  ===================================

The adjacency matrices are not stored in either layout (they are rebuilt
from the skeleton and the frame chain).

Security: a ``.pth`` / ``.bin`` / ``.pt`` checkpoint is a pickle. It is read
with ``torch.load(weights_only=True)`` first; only if that fails (old files
that pickle extra objects) is it re-read with ``weights_only=False``, which
can run arbitrary code -- load only files you trust (e.g. downloaded from
the authors' release). ``.safetensors`` files are read without pickle.
"""
from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from video3d.errors import WeightsError
from video3d.models.ktpformer import KTPFormer

__all__ = [
    "OFFICIAL_KEY_MAP",
    "official_key_names_and_shapes",
    "convert_official_state_dict",
    "load_official_checkpoint",
]

#: Ordered (official regex, video3d replacement) rules; first match wins.
OFFICIAL_KEY_MAP: tuple[tuple[str, str], ...] = (
    (r"^kpattention\.attn\.kpa\.gconv\.", "kpa.embed.gconv."),
    (r"^kpattention\.attn\.kpa\.bn\.", "kpa.embed.bn."),
    (r"^kpattention\.attn\.Spatial_pos_embed$", "kpa.pos_embed"),
    (r"^kpattention\.attn\.norm1\.", "kpa.norm1."),
    (r"^kpattention\.attn\.(qkv|proj)\.", r"kpa.attn.\1."),
    (r"^kpattention\.(norm2|mlp\.fc1|mlp\.fc2)\.", r"kpa.\1."),
    (r"^tpattention\.attn\.tpa\.gconv([12])\.gconv\.", r"tpa.embed.layer\1.gconv."),
    (r"^tpattention\.attn\.tpa\.gconv([12])\.bn\.", r"tpa.embed.layer\1.bn."),
    (r"^tpattention\.attn\.Temporal_pos_embed$", "tpa.pos_embed"),
    (r"^tpattention\.attn\.norm1\.", "tpa.norm1."),
    (r"^tpattention\.attn\.(qkv|proj)\.", r"tpa.attn.\1."),
    (r"^tpattention\.(norm2|mlp\.fc1|mlp\.fc2)\.", r"tpa.\1."),
    (r"^STEblocks\.(\d+)\.", r"spatial_blocks.\1."),
    (r"^TTEblocks\.(\d+)\.", r"temporal_blocks.\1."),
    (r"^Spatial_norm\.", "spatial_norm."),
    (r"^Temporal_norm\.", "temporal_norm."),
    (r"^head\.0\.", "head_norm."),
    (r"^head\.1\.", "head."),
)
_COMPILED = tuple((re.compile(pat), rep) for pat, rep in OFFICIAL_KEY_MAP)
_WRAPPER_PREFIXES = ("module.", "model_pos.")
_CHECKPOINT_WRAPPERS = ("model_pos", "model", "state_dict")


def official_key_names_and_shapes(
    num_frames: int = 243,
    embed_dim: int = 512,
    depth: int = 8,
    mlp_ratio: float = 2.0,
    num_joints: int = 17,
    in_chans: int = 2,
    prefix: str = "module.",
) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor of the official KTPFormer state dict, in module order.

    Returns ``[(key, shape), ...]``; BatchNorm layers contribute weight,
    bias, running_mean, running_var and a scalar ``num_batches_tracked``.
    At the paper size (243, 512, depth 8) there are 229 entries.
    """
    c, t, n = embed_dim, num_frames, num_joints
    hidden = int(embed_dim * mlp_ratio)
    out: list[tuple[str, tuple[int, ...]]] = []

    def ln(name: str) -> None:
        out.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,))])

    def linear(name: str, cin: int, cout: int) -> None:
        out.extend([(f"{name}.weight", (cout, cin)), (f"{name}.bias", (cout,))])

    def bn(name: str) -> None:
        out.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,)),
                    (f"{name}.running_mean", (c,)), (f"{name}.running_var", (c,)),
                    (f"{name}.num_batches_tracked", ())])

    def gconv(name: str, cin: int, nodes: int) -> None:
        out.extend([(f"{name}.W", (2, cin, c)), (f"{name}.M", (nodes, c)),
                    (f"{name}.adj2", (nodes, nodes)), (f"{name}.bias", (c,))])

    def attn(name: str) -> None:
        linear(f"{name}.qkv", c, 3 * c)
        linear(f"{name}.proj", c, c)

    def mlp(name: str) -> None:
        linear(f"{name}.fc1", c, hidden)
        linear(f"{name}.fc2", hidden, c)

    def block(name: str) -> None:
        ln(f"{name}.norm1")
        attn(f"{name}.attn")
        ln(f"{name}.norm2")
        mlp(f"{name}.mlp")

    for i in range(depth - 1):
        block(f"STEblocks.{i}")
    for i in range(depth - 1):
        block(f"TTEblocks.{i}")
    ln("Spatial_norm")
    ln("Temporal_norm")
    # KPA layer
    attn("kpattention.attn")
    gconv("kpattention.attn.kpa.gconv", in_chans, n)
    bn("kpattention.attn.kpa.bn")
    out.append(("kpattention.attn.Spatial_pos_embed", (1, n, c)))
    ln("kpattention.attn.norm1")
    ln("kpattention.norm2")
    mlp("kpattention.mlp")
    # TPA layer
    attn("tpattention.attn")
    for k in (1, 2):
        gconv(f"tpattention.attn.tpa.gconv{k}.gconv", c, t)
        bn(f"tpattention.attn.tpa.gconv{k}.bn")
    out.append(("tpattention.attn.Temporal_pos_embed", (1, t, c)))
    ln("tpattention.attn.norm1")
    ln("tpattention.norm2")
    mlp("tpattention.mlp")
    # head
    ln("head.0")
    linear("head.1", c, 3)
    return [(prefix + k, s) for k, s in out]


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _WRAPPER_PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def map_official_key(key: str) -> str | None:
    """Official key (with or without ``module.``) -> video3d key, or None."""
    key = _strip_wrappers(key)
    for pat, rep in _COMPILED:
        if pat.search(key):
            return pat.sub(rep, key, count=1)
    return None


def convert_official_state_dict(
    state_dict: Mapping[str, Tensor], model: KTPFormer | None = None
) -> dict[str, Tensor]:
    """Rename an official KTPFormer state dict to video3d's layout.

    Strips ``module.`` / ``model_pos.`` and applies :data:`OFFICIAL_KEY_MAP`.
    With ``model`` given, also checks that every key of the model is present
    and every shape matches. Raises :class:`~video3d.errors.WeightsError`
    listing unmapped, missing and mis-shaped keys.
    """
    converted: dict[str, Tensor] = {}
    unmapped = []
    for key, value in state_dict.items():
        new = map_official_key(key)
        if new is None:
            unmapped.append(key)
        else:
            converted[new] = value
    problems = []
    if unmapped:
        problems.append(f"unmapped official keys: {_short(unmapped)}")
    if model is not None:
        expected = model.state_dict()
        missing = [k for k in expected if k not in converted]
        unexpected = [k for k in converted if k not in expected]
        shapes = [f"{k} {tuple(converted[k].shape)} != {tuple(v.shape)}"
                  for k, v in expected.items() if k in converted and converted[k].shape != v.shape]
        if missing:
            problems.append(f"missing keys: {_short(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_short(unexpected)}")
        if shapes:
            problems.append(f"shape mismatches: {_short(shapes)}")
    if problems:
        raise WeightsError("not an official KTPFormer checkpoint: " + "; ".join(problems))
    return converted


def _short(items: list[str], limit: int = 8) -> str:
    more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _read_checkpoint(path: Path, map_location: Any) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device=str(map_location))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # what weights-only loading raises on extra globals
        warnings.warn(
            f"{path.name}: weights-only loading failed ({type(err).__name__}); re-reading it as a full "
            "pickle, which can execute code -- only do this with checkpoints you trust",
            stacklevel=3,
        )
        return torch.load(path, map_location=map_location, weights_only=False)


def _unwrap(obj: Any) -> Mapping[str, Tensor]:
    if isinstance(obj, Mapping):
        for name in _CHECKPOINT_WRAPPERS:
            inner = obj.get(name)
            if isinstance(inner, Mapping):
                return inner
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            return obj
    raise WeightsError("checkpoint holds no state dict (looked for 'model_pos', 'model', 'state_dict' "
                       "or a plain name -> tensor mapping)")


def infer_official_config(state_dict: Mapping[str, Tensor]) -> dict[str, Any]:
    """KTPFormer constructor arguments read off official tensor shapes.

    ``num_heads`` cannot be inferred from shapes and is not included.
    """
    sd = {_strip_wrappers(k): v for k, v in state_dict.items()}
    try:
        w = sd["kpattention.attn.kpa.gconv.W"]  # (2, in_chans, C)
        m = sd["kpattention.attn.kpa.gconv.M"]  # (J, C)
        pos_t = sd["tpattention.attn.Temporal_pos_embed"]  # (1, T, C)
        fc1 = sd["kpattention.mlp.fc1.weight"]  # (hidden, C)
    except KeyError as err:
        raise WeightsError(f"not an official KTPFormer checkpoint: no tensor {err.args[0]!r}") from None
    blocks = {int(mt.group(1)) for k in sd if (mt := re.match(r"STEblocks\.(\d+)\.", k))}
    embed_dim = int(w.shape[2])
    return dict(
        num_frames=int(pos_t.shape[1]),
        num_joints=int(m.shape[0]),
        in_chans=int(w.shape[1]),
        embed_dim=embed_dim,
        depth=len(blocks) + 1,
        mlp_ratio=fc1.shape[0] / embed_dim,
        qkv_bias="kpattention.attn.qkv.bias" in sd,
    )


def load_official_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", num_heads: int = 8
) -> tuple[KTPFormer, dict[str, Any]]:
    """Build a :class:`KTPFormer` from an official checkpoint file.

    The file is a trusted torch checkpoint (see the module docstring on
    pickle) or a ``.safetensors`` file; dicts wrapping the weights under
    ``'model_pos'``, ``'model'`` or ``'state_dict'`` are unwrapped. Width,
    window length, depth, MLP ratio and qkv bias are inferred from tensor
    shapes; ``num_heads`` (8 in the release) cannot be and is an argument.

    Returns ``(model in eval mode, info)`` with ``info`` holding
    ``config`` (constructor kwargs), ``num_tensors``, ``epoch`` (if stored)
    and ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"KTPFormer checkpoint not found: {path}")
    try:
        raw = _read_checkpoint(path, map_location)
    except WeightsError:
        raise
    except Exception as err:  # corrupt / truncated / not a checkpoint
        raise WeightsError(f"cannot read KTPFormer checkpoint {path}: {type(err).__name__}: {err}") from None
    sd = _unwrap(raw)
    config = infer_official_config(sd)
    config["num_heads"] = num_heads
    if config["embed_dim"] % num_heads:
        raise WeightsError(f"embed_dim {config['embed_dim']} is not divisible by num_heads {num_heads}")
    model = KTPFormer(**config, drop_path_rate=0.0)
    converted = convert_official_state_dict(sd, model)
    model.load_state_dict(converted, strict=True)
    model.to(map_location).eval()
    info = dict(config=config, num_tensors=len(sd), path=str(path))
    if isinstance(raw, Mapping) and "epoch" in raw:
        info["epoch"] = raw["epoch"]
    return model, info
