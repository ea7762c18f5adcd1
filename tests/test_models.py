"""Tests for the lifter models: layers, KTPFormer, AMPose, presets, official
checkpoint loading, profiling. Large models are only built on ``meta``."""
from __future__ import annotations

import math

import pytest
import torch

from video3d import skeleton
from video3d.errors import UserError, WeightsError
from video3d.models.ampose import AMPose, JointGroupGraphConv, joint_group_adjacency
from video3d.models.ktpformer import KTPFormer
from video3d.models.layers import (
    Attention,
    Block,
    DropPath,
    ModulatedGraphConv,
    chain_adjacency,
    normalize_adjacency,
    skeleton_adjacency,
)
from video3d.models.official import (
    OFFICIAL_KEY_MAP,
    convert_official_state_dict,
    load_official_checkpoint,
    map_official_key,
    official_key_names_and_shapes,
)
from video3d.models.registry import LIFTERS, build_model, model_config
from video3d.models.profile import count_macs, count_parameters, measure_fps

META = torch.device("meta")
PAPER_KTPFORMER_PARAMS = 35_213_430
PAPER_AMPOSE_PARAMS = 18_405_379


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- layers
def test_drop_path_eval_identity_and_train_scaling():
    x = torch.ones(1000, 4)
    dp = DropPath(0.25)
    dp.eval()
    assert torch.equal(dp(x), x)
    dp.train()
    y = dp(x)
    kept = y[:, 0] != 0
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.75))
    assert torch.all(y == y[:, :1])  # whole samples dropped
    assert 0.6 < kept.float().mean() < 0.9


def test_attention_matches_explicit_softmax():
    attn = Attention(16, num_heads=4, qkv_bias=True).eval()
    x = torch.randn(2, 5, 16)
    q, k, v = attn.qkv(x).reshape(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(4), dim=-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attn(x), ref, atol=1e-5)


def test_block_shape_and_names():
    blk = Block(16, 4, mlp_ratio=2.0, qkv_bias=True)
    assert blk(torch.randn(3, 7, 16)).shape == (3, 7, 16)
    names = {k.rsplit(".", 1)[0] for k in blk.state_dict()}
    assert names == {"norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"}
    assert blk.mlp.fc1.out_features == 32


def test_chain_and_skeleton_adjacency():
    a = chain_adjacency(4)
    expected = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=torch.float32)
    assert torch.equal(a, expected)
    s = skeleton_adjacency()
    assert s.shape == (17, 17) and torch.equal(s, s.T) and s.sum() == 2 * len(skeleton.BONES)


def test_normalize_adjacency_rows_and_diagonal():
    a = normalize_adjacency(chain_adjacency(4))
    expected = torch.tensor([[1, 1, 0, 0], [0.5, 1, 0.5, 0], [0, 0.5, 1, 0.5], [0, 0, 1, 1]])
    assert torch.allclose(a, expected)
    s = normalize_adjacency(skeleton_adjacency())
    assert torch.allclose(torch.diagonal(s), torch.ones(17))
    # pelvis has 3 neighbours (both hips, spine); thorax 3 (neck, shoulders)
    assert torch.allclose(s[0, [1, 4, 7]], torch.full((3,), 1 / 3))
    assert torch.allclose(s[2, [1, 3]], torch.full((2,), 0.5))
    assert torch.allclose(s[10, 9], torch.tensor(1.0))


def test_modulated_graph_conv_matches_dense_formula():
    adj = chain_adjacency(5)
    g = ModulatedGraphConv(3, 4, adj)
    with torch.no_grad():  # move parameters off their initial values
        g.M.normal_()
        g.adj2.normal_(std=0.1)
        g.bias.normal_()
    x = torch.randn(2, 5, 3)
    # Hand-written dense reference (REFERENCE §3).
    a = torch.zeros(5, 5)
    for i in range(5):
        nbrs = [j for j in (i - 1, i + 1) if 0 <= j < 5]
        for j in nbrs:
            a[i, j] = 1.0 / len(nbrs)
        a[i, i] = 1.0
    aq = a + g.adj2
    a_hat = (aq + aq.T) / 2
    eye = torch.eye(5)
    ref = ((a_hat * eye) @ (g.M * (x @ g.W[0])) + (a_hat * (1 - eye)) @ (g.M * (x @ g.W[1]))
           + g.bias)
    assert torch.allclose(g(x), ref, atol=1e-5)
    # parameters and initialisation
    fresh = ModulatedGraphConv(3, 4, adj)
    assert fresh.W.shape == (2, 3, 4) and fresh.M.shape == (5, 4) and fresh.adj2.shape == (5, 5)
    assert torch.all(fresh.M == 1) and torch.all(fresh.adj2 == 1e-6)
    assert set(fresh.state_dict()) == {"W", "M", "adj2", "bias"}  # adj is non-persistent


def test_joint_group_adjacency():
    raw = joint_group_adjacency(normalize=False)
    assert torch.equal(raw.sum(0), torch.as_tensor(skeleton.adjacency(self_loops=True)))
    assert torch.equal(raw[0], torch.eye(17))
    assert raw[1][0].sum() == 0  # the pelvis has no closer neighbour
    for j, p in enumerate(skeleton.PARENTS):
        if p >= 0:
            assert raw[1][j, p] == 1 and raw[2][p, j] == 1
    norm = joint_group_adjacency()
    assert torch.isfinite(norm).all()
    assert torch.allclose(norm[2], norm[1].T)
    assert torch.isclose(norm[1][1, 0], torch.tensor(1 / math.sqrt(3)))  # hip -> pelvis (3 children)


def test_joint_group_graph_conv_matches_dense_formula():
    g = JointGroupGraphConv(3, 5)
    with torch.no_grad():
        g.bias.normal_()
    x = torch.randn(2, 17, 3)
    ref = sum(g.adj[j] @ x @ g.W[j] for j in range(3)) + g.bias
    assert torch.allclose(g(x), ref, atol=1e-5)
    assert set(g.state_dict()) == {"W", "bias"}


# --------------------------------------------------------------------------- KTPFormer
@pytest.mark.slow
def test_ktpformer_paper_param_count():
    with META:
        model = build_model("ktpformer", "paper")
    n = count_parameters(model)
    print(f"KTPFormer paper parameters: {n:,}")
    assert abs(n - 35.2e6) <= 0.2e6
    assert n == PAPER_KTPFORMER_PARAMS
    assert len(model.state_dict()) == 229


@pytest.mark.slow
def test_ktpformer_paper_macs_on_meta():
    with META:
        model = KTPFormer()
    macs = count_macs(model, torch.zeros(1, 243, 17, 2, device=META))
    assert 150e9 < macs < 156e9  # paper: ~152 G per 243-frame window


@pytest.mark.parametrize("preset", sorted(LIFTERS["ktpformer"].presets))
def test_ktpformer_preset_shapes(preset):
    cfg = model_config("ktpformer", preset)
    with META:  # full window length, no compute
        model = build_model("ktpformer", preset)
        out = model(torch.zeros(2, cfg["num_frames"], 17, 2))
    assert out.shape == (2, cfg["num_frames"], 17, 3)
    if cfg["embed_dim"] <= 128:  # CPU presets: really compute, on a short window
        small = build_model("ktpformer", preset, num_frames=9)
        y = small(torch.randn(2, 9, 17, 2))
        assert y.shape == (2, 9, 17, 3) and torch.isfinite(y).all()


def test_ktpformer_rejects_wrong_window():
    model = KTPFormer(num_frames=9, embed_dim=16, depth=2, num_heads=2)
    with pytest.raises(ValueError, match="exactly 9 frames"):
        model(torch.randn(1, 8, 17, 2))
    with pytest.raises(ValueError):
        model(torch.randn(1, 9, 16, 2))


def test_ktpformer_seq2seq_sanity_and_all_parameters_used():
    model = KTPFormer(num_frames=9, embed_dim=16, depth=2, num_heads=2, drop_path_rate=0.1)
    x = torch.randn(2, 9, 17, 2)
    loss = model(x).square().mean()
    loss.backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused
    model.eval()
    with torch.no_grad():
        y = model(x)
        x2 = x.clone()
        x2[0, 4] += 0.5
        y2 = model(x2)
    assert not torch.allclose(y2[0, 4], y[0, 4])  # that frame moves
    assert not torch.allclose(y2[0, 0], y[0, 0])  # temporal attention reaches other frames
    assert torch.allclose(y2[1], y[1], atol=1e-6)  # other windows untouched in eval mode


def test_ktpformer_drop_path_schedule():
    model = KTPFormer(num_frames=5, embed_dim=16, depth=3, num_heads=2, drop_path_rate=0.2)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in model.spatial_blocks]
    assert rates == pytest.approx([0.1, 0.2])
    assert isinstance(model.kpa.drop_path, torch.nn.Identity)


# --------------------------------------------------------------------------- AMPose
def test_ampose_param_counts():
    with META:
        paper = build_model("ampose", "paper")
        small = build_model("ampose", "small")
    n_paper, n_small = count_parameters(paper), count_parameters(small)
    print(f"AMPose paper parameters: {n_paper:,}; small: {n_small:,}")
    assert n_paper == PAPER_AMPOSE_PARAMS
    assert 18.0e6 < n_paper < 18.6e6  # paper: 18.3 M
    assert 0.5e6 < n_small < 1.5e6


@pytest.mark.parametrize("preset", sorted(LIFTERS["ampose"].presets))
def test_ampose_preset_shapes(preset):
    with META:
        model = build_model("ampose", preset)
        assert model(torch.zeros(4, 17, 2)).shape == (4, 17, 3)
    if model_config("ampose", preset)["embed_dim"] <= 128:
        model = build_model("ampose", preset).eval()
        x = torch.randn(2, 3, 17, 2)
        y = model(x)
        assert y.shape == (2, 3, 17, 3)
        # frames are folded into the batch: each frame lifted on its own
        assert torch.allclose(model(x[:, 1]), y[:, 1], atol=1e-5)
    with pytest.raises(ValueError):
        AMPose(embed_dim=16, depth=1, num_heads=2)(torch.randn(2, 16, 2))


def test_ampose_backward_uses_all_parameters():
    model = AMPose(embed_dim=16, depth=2, num_heads=2)
    model(torch.randn(3, 17, 2)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# --------------------------------------------------------------------------- presets
def test_presets_factory_and_errors():
    cfg = model_config("ktpformer", "small", depth=2)
    assert cfg["depth"] == 2
    assert LIFTERS["ktpformer"].presets["small"]["depth"] == 4  # data untouched by overrides
    assert model_config("KTPFormer", "Paper")["embed_dim"] == 512
    with pytest.raises(UserError, match="unknown lifter"):
        build_model("nope", "paper")
    with pytest.raises(UserError, match="unknown preset"):
        build_model("ampose", "huge")
    with pytest.raises(UserError, match="bad argument"):
        build_model("ampose", "small", num_frames=9)


# --------------------------------------------------------------------------- official checkpoint
def test_official_layout_paper_size_round_trip():
    keys = official_key_names_and_shapes()
    assert len(keys) == 229
    assert all(k.startswith("module.") for k, _ in keys)
    shapes = dict(keys)
    assert shapes["module.kpattention.attn.kpa.gconv.W"] == (2, 2, 512)
    assert shapes["module.kpattention.attn.kpa.gconv.M"] == (17, 512)
    assert shapes["module.tpattention.attn.tpa.gconv2.gconv.adj2"] == (243, 243)
    assert shapes["module.tpattention.attn.Temporal_pos_embed"] == (1, 243, 512)
    assert "module.STEblocks.6.mlp.fc2.bias" in shapes and "module.STEblocks.7.norm1.weight" not in shapes
    with META:
        model = KTPFormer()
    sd = {k: torch.empty(s, device=META) for k, s in keys}
    converted = convert_official_state_dict(sd, model)
    assert set(converted) == set(model.state_dict())  # every tensor maps, nothing missing
    n_params = sum(math.prod(s) for k, s in keys if "running" not in k and "num_batches" not in k)
    assert n_params == PAPER_KTPFORMER_PARAMS
    assert len(OFFICIAL_KEY_MAP) >= 10


def test_official_key_map_examples():
    assert map_official_key("module.STEblocks.3.attn.qkv.weight") == "spatial_blocks.3.attn.qkv.weight"
    assert map_official_key("module.tpattention.attn.tpa.gconv2.bn.running_var") == "tpa.embed.layer2.bn.running_var"
    assert map_official_key("module.kpattention.attn.Spatial_pos_embed") == "kpa.pos_embed"
    assert map_official_key("module.head.1.weight") == "head.weight"
    assert map_official_key("module.something.else") is None


def _random_official_sd(**size):
    sd = {}
    for k, s in official_key_names_and_shapes(**size):
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(s) + 0.5
        else:
            sd[k] = torch.randn(s)
    return sd


@pytest.mark.parametrize("wrapper", ["model_pos", "model", "state_dict", None])
def test_load_official_checkpoint_small_variant(tmp_path, wrapper):
    size = dict(num_frames=9, embed_dim=32, depth=3)
    sd = _random_official_sd(**size)
    path = tmp_path / "ktpformer.bin"
    torch.save({wrapper: sd, "epoch": 12} if wrapper else sd, path)
    model, info = load_official_checkpoint(path, num_heads=4)
    assert info["config"]["num_frames"] == 9 and info["config"]["embed_dim"] == 32
    assert info["config"]["depth"] == 3 and info["config"]["mlp_ratio"] == 2.0
    assert info["num_tensors"] == len(sd)
    ours = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(ours[map_official_key(k)], v), k
    assert not model.training
    with torch.no_grad():
        y = model(torch.randn(2, 9, 17, 2))
    assert y.shape == (2, 9, 17, 3) and torch.isfinite(y).all()


def test_load_official_checkpoint_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_official_checkpoint(tmp_path / "missing.pth")
    sd = _random_official_sd(num_frames=5, embed_dim=16, depth=2)
    sd["module.extra.weight"] = torch.zeros(1)
    del sd["module.head.1.bias"]
    path = tmp_path / "bad.pth"
    torch.save({"model_pos": sd}, path)
    with pytest.raises(WeightsError, match=r"unmapped official keys: module\.extra\.weight"):
        load_official_checkpoint(path, num_heads=2)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"), pytest.warns(UserWarning, match="trust"):
        load_official_checkpoint(tmp_path / "junk.pth")


def test_load_official_safetensors(tmp_path):
    from safetensors.torch import save_file

    sd = _random_official_sd(num_frames=5, embed_dim=16, depth=2)
    save_file(sd, str(tmp_path / "k.safetensors"))
    model, info = load_official_checkpoint(tmp_path / "k.safetensors", num_heads=2)
    assert info["config"]["num_frames"] == 5
    assert torch.equal(model.tpa.pos_embed, sd["module.tpattention.attn.Temporal_pos_embed"])


# --------------------------------------------------------------------------- profile
def test_profile_helpers():
    model = KTPFormer(num_frames=9, embed_dim=16, depth=2, num_heads=2)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    macs = count_macs(model, torch.randn(1, 9, 17, 2))
    # attention must be counted on CPU too (same number as on meta)
    meta_macs = count_macs(model.to(META), torch.zeros(1, 9, 17, 2, device=META))
    assert macs == meta_macs > 0
    model = AMPose(embed_dim=16, depth=1, num_heads=2)
    assert measure_fps(model, num_frames=4, batch_size=2, warmup=0, iters=1) > 0
    assert model.training  # mode restored
