#!/usr/bin/env python3
"""Export stand-in ActionCLIP ONNX graphs (image ViT-B/32, CLIP text, 'Transf' fusion) with random weights.

The real ailia files (`vit-32-8f-{image_clip,text_clip,fusion}.onnx`, torch 1.8.1, opset 10) cannot be
downloaded here, so this script rebuilds the three exported modules with our own PyTorch code (no CLIP
package) and seeded random weights, and exports them so the graphs look like a torch 1.8.1 export
(see Shared spec graphs.md sections 2, 4 and 5):

* torch 1.8.1's `F.multi_head_attention_forward` and `F.linear` are replayed call for call (packed in-proj
  MatMul + Add, chunk -> Split, q * scaling, view/transpose per head, bmm, += mask, softmax, bmm,
  transpose/view, out-proj). torch 2.x's own `nn.MultiheadAttention` cannot be exported at opset 10.
* variant `emu181`: every input dim is declared dynamic during export (torch 1.8.1 never folded
  `Shape(input)` into constants, so the Shape chains stay computed), JIT CSE and initializer
  de-duplication are switched off (1.8.1 had neither), then the saved file gets static input/output
  shapes back, no value_info and ir_version 5.
* variant `default`: torch's default TorchScript exporter at opset 10 with static shapes (Shape chains
  folded into constant Reshape targets, CSE and de-dup on): graphs.md's `full-static`.

Usage:
  export_standins.py --out DIR [--size full|tiny] [--variant emu181|default] [--only image|text|fusion]
                     [--seed S] [--check]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FILE_NAMES = {
    "image": "vit-32-8f-image_clip.onnx",
    "text": "vit-32-8f-text_clip.onnx",
    "fusion": "vit-32-8f-fusion.onnx",
}
INPUT_NAMES = {"image": "image", "text": "text", "fusion": "image_features"}
OUTPUT_NAMES = {"image": "image_features", "text": "text_features", "fusion": "fused_image_features"}


@dataclass(frozen=True)
class Sizes:
    """Model hyper-parameters for one size preset."""

    image_width: int
    image_layers: int
    image_heads: int
    patch: int
    resolution: int
    embed_dim: int
    text_width: int
    text_layers: int
    text_heads: int
    vocab: int
    context: int
    fusion_layers: int
    fusion_heads: int
    frames: int


SIZES = {
    "full": Sizes(image_width=768, image_layers=12, image_heads=12, patch=32, resolution=224, embed_dim=512,
                  text_width=512, text_layers=12, text_heads=8, vocab=49408, context=77,
                  fusion_layers=6, fusion_heads=8, frames=8),
    "tiny": Sizes(image_width=64, image_layers=2, image_heads=2, patch=32, resolution=224, embed_dim=64,
                  text_width=64, text_layers=2, text_heads=2, vocab=49408, context=77,
                  fusion_layers=2, fusion_heads=2, frames=8),
}


# --------------------------------------------------------------------------------------------------
# torch 1.8.1 functional code paths, replayed with the same aten calls in the same order.
# --------------------------------------------------------------------------------------------------

def linear_181(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """torch 1.8.1 `F.linear`: addmm for 2-D input with bias, else matmul(W.t()) + bias.

    `output = output + bias` replaces 1.8.1's `output += bias`; the ONNX result is the same Add, and the
    in-place form is fragile in the newer exporter.
    """
    if input.dim() == 2 and bias is not None:
        return torch.addmm(bias, input, weight.t())
    output = input.matmul(weight.t())
    if bias is not None:
        output = output + bias
    return output


def multi_head_attention_forward_181(query, key, value, embed_dim_to_check: int, num_heads: int,
                                     in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                                     attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                                     training: bool = False) -> torch.Tensor:
    """torch 1.8.1 `F.multi_head_attention_forward`, self-attention branch, no bias_k/v, no padding mask.

    Layout is sequence-first: query [L, N, E]. Returns the attention output [L, N, E] (need_weights=False).
    Under tracing the sizes are 0-d tensors, so `embed_dim // num_heads` and the views become the int64
    Shape/Gather/Div/Mul/Concat programs seen in 1.8.1 exports, and `float(head_dim) ** -0.5` is baked.
    """
    tgt_len, bsz, embed_dim = query.size()
    head_dim = embed_dim // num_heads
    scaling = float(head_dim) ** -0.5

    # self-attention: one packed projection, then chunk (-> ONNX Split)
    q, k, v = linear_181(query, in_proj_weight, in_proj_bias).chunk(3, dim=-1)
    q = q * scaling

    if attn_mask is not None and attn_mask.dim() == 2:
        attn_mask = attn_mask.unsqueeze(0)

    q = q.contiguous().view(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)
    v = v.contiguous().view(-1, bsz * num_heads, head_dim).transpose(0, 1)

    attn_output_weights = torch.bmm(q, k.transpose(1, 2))
    if attn_mask is not None:
        attn_output_weights += attn_mask
    attn_output_weights = F.softmax(attn_output_weights, dim=-1)
    attn_output_weights = F.dropout(attn_output_weights, p=dropout_p, training=training)

    attn_output = torch.bmm(attn_output_weights, v)
    attn_output = attn_output.transpose(0, 1).contiguous().view(tgt_len, bsz, embed_dim)
    return linear_181(attn_output, out_proj_weight, out_proj_bias)


class Linear181(nn.Linear):
    """nn.Linear whose forward is torch 1.8.1's `F.linear` (same parameter names as nn.Linear)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_181(x, self.weight, self.bias)


class MultiheadAttention181(nn.Module):
    """Self-attention with nn.MultiheadAttention's parameter names, running the 1.8.1 functional path."""

    def __init__(self, embed_dim: int, num_heads: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = Linear181(embed_dim, embed_dim)

    def forward(self, query, key, value, need_weights: bool = False, attn_mask=None):
        out = multi_head_attention_forward_181(query, key, value, self.embed_dim, self.num_heads,
                                               self.in_proj_weight, self.in_proj_bias,
                                               self.out_proj.weight, self.out_proj.bias,
                                               attn_mask=attn_mask, training=self.training)
        return out, None


# --------------------------------------------------------------------------------------------------
# CLIP (clip/model.py) and ActionCLIP (modules/Visual_Prompt.py) modules
# --------------------------------------------------------------------------------------------------

class LayerNorm(nn.LayerNorm):
    """CLIP's LayerNorm: computes in float32 and casts back (the two no-op Casts per LN in the graph)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """CLIP pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); optional additive attention mask."""

    def __init__(self, d_model: int, n_head: int, attn_mask: torch.Tensor | None = None, layer_norm=LayerNorm):
        super().__init__()
        self.attn = MultiheadAttention181(d_model, n_head)
        self.ln_1 = layer_norm(d_model)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", Linear181(d_model, d_model * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", Linear181(d_model * 4, d_model)),
        ]))
        self.ln_2 = layer_norm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        self.attn_mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    """Stack of ResidualAttentionBlocks (sequence-first [L, N, E])."""

    def __init__(self, width: int, layers: int, heads: int, attn_mask=None, layer_norm=LayerNorm):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask, layer_norm)
                                         for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisualTransformer(nn.Module):
    """CLIP ViT: conv patches, class token, positional embedding, ln_pre, blocks, ln_post(token 0) @ proj."""

    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int, output_dim: int):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # [N, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1)
        x = x.permute(0, 2, 1)
        x = torch.cat([self.class_embedding.to(x.dtype)
                       + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device), x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD
        x = self.ln_post(x[:, 0, :])
        x = x @ self.proj
        return x


class CLIP(nn.Module):
    """The parts of CLIP that encode_image / encode_text use (fp32, as `clip.load(device='cpu')` leaves it)."""

    def __init__(self, s: Sizes):
        super().__init__()
        self.context_length = s.context
        self.visual = VisualTransformer(s.resolution, s.patch, s.image_width, s.image_layers, s.image_heads,
                                        s.embed_dim)
        self.transformer = Transformer(s.text_width, s.text_layers, s.text_heads,
                                       attn_mask=self.build_attention_mask())
        self.vocab_size = s.vocab
        self.token_embedding = nn.Embedding(s.vocab, s.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(s.context, s.text_width))
        self.ln_final = LayerNorm(s.text_width)
        self.text_projection = nn.Parameter(torch.empty(s.text_width, s.embed_dim))

    def build_attention_mask(self) -> torch.Tensor:
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        mask.triu_(1)  # zero on and below the diagonal
        return mask

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image.type(self.dtype))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(text).type(self.dtype)  # [N, n_ctx, d_model]
        x = x + self.positional_embedding.type(self.dtype)
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD
        x = self.ln_final(x).type(self.dtype)
        # features at the EOT token (the largest id in each sequence)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return x


class ImageCLIP(nn.Module):
    """ActionCLIP test.py wrapper: forward = model.encode_image."""

    def __init__(self, model: CLIP):
        super().__init__()
        self.model = model

    def forward(self, image):
        return self.model.encode_image(image)


class TextCLIP(nn.Module):
    """ActionCLIP test.py wrapper: forward = model.encode_text."""

    def __init__(self, model: CLIP):
        super().__init__()
        self.model = model

    def forward(self, text):
        return self.model.encode_text(text)


class TFLayerNorm(nn.Module):
    """ActionCLIP Visual_Prompt LayerNorm (TF style, eps inside the sqrt): weight * (x-u)/sqrt(s+eps) + bias."""

    def __init__(self, hidden_size: int, eps: float = 1e-12):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(-1, keepdim=True)
        s = (x - u).pow(2).mean(-1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.variance_epsilon)
        return self.weight * x + self.bias


class TemporalTransformer(nn.Module):
    """ActionCLIP TemporalTransformer: its own blocks with the TF-style LayerNorm, no mask."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, None, TFLayerNorm)
                                         for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisualPrompt(nn.Module):
    """ActionCLIP visual_prompt('Transf'): + frame position embeddings, temporal transformer, + input, mean over T."""

    def __init__(self, s: Sizes):
        super().__init__()
        self.sim_header = "Transf"
        self.T = s.frames
        self.frame_position_embeddings = nn.Embedding(s.context, s.embed_dim)
        self.transformer = TemporalTransformer(width=s.embed_dim, layers=s.fusion_layers, heads=s.fusion_heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.size()
        x = x.contiguous()
        x_original = x
        seq_length = t
        position_ids = torch.arange(seq_length, dtype=torch.long, device=x.device)
        position_ids = position_ids.unsqueeze(0).expand(x.size(0), -1)
        frame_position_embeddings = self.frame_position_embeddings(position_ids)
        x = x + frame_position_embeddings
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)  # LND -> NLD
        x = x.type(x_original.dtype) + x_original
        return x.mean(dim=1, keepdim=False)


# --------------------------------------------------------------------------------------------------
# Deterministic CLIP-like initialisation
# --------------------------------------------------------------------------------------------------

def _normal(gen: torch.Generator, shape, std: float, mean: float = 0.0) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float32) * std + mean


def init_transformer(gen: torch.Generator, tr: nn.Module, width: int, layers: int) -> None:
    """CLIP's initialize_parameters for blocks, plus small random biases and LN affine noise."""
    proj_std = (width ** -0.5) * ((2 * layers) ** -0.5)
    attn_std = width ** -0.5
    fc_std = (2 * width) ** -0.5
    for block in tr.resblocks:
        block.attn.in_proj_weight.copy_(_normal(gen, block.attn.in_proj_weight.shape, attn_std))
        block.attn.in_proj_bias.copy_(_normal(gen, block.attn.in_proj_bias.shape, 0.02))
        block.attn.out_proj.weight.copy_(_normal(gen, block.attn.out_proj.weight.shape, proj_std))
        block.attn.out_proj.bias.copy_(_normal(gen, block.attn.out_proj.bias.shape, 0.02))
        block.mlp.c_fc.weight.copy_(_normal(gen, block.mlp.c_fc.weight.shape, fc_std))
        block.mlp.c_fc.bias.copy_(_normal(gen, block.mlp.c_fc.bias.shape, 0.02))
        block.mlp.c_proj.weight.copy_(_normal(gen, block.mlp.c_proj.weight.shape, proj_std))
        block.mlp.c_proj.bias.copy_(_normal(gen, block.mlp.c_proj.bias.shape, 0.02))
        for ln in (block.ln_1, block.ln_2):
            init_layer_norm(gen, ln)


def init_layer_norm(gen: torch.Generator, ln: nn.Module) -> None:
    ln.weight.copy_(_normal(gen, ln.weight.shape, 0.1, 1.0))
    ln.bias.copy_(_normal(gen, ln.bias.shape, 0.02))


@torch.no_grad()
def build_model(kind: str, s: Sizes, seed: int) -> nn.Module:
    """Build one of the three exported modules with seeded weights (independent of global RNG state)."""
    torch.manual_seed(seed)  # only affects constructor defaults, all of which are overwritten below
    sub = {"image": 1, "text": 2, "fusion": 3}[kind]
    gen = torch.Generator().manual_seed(seed * 1000 + sub)
    if kind == "fusion":
        m = VisualPrompt(s)
        m.frame_position_embeddings.weight.copy_(_normal(gen, m.frame_position_embeddings.weight.shape, 0.02 * 10))
        init_transformer(gen, m.transformer, s.embed_dim, s.fusion_layers)
        return m.eval()
    clip = CLIP(s)
    if kind == "image":
        v = clip.visual
        w = s.image_width
        fan_in = 3 * s.patch * s.patch
        v.conv1.weight.copy_(_normal(gen, v.conv1.weight.shape, fan_in ** -0.5))
        v.class_embedding.copy_(_normal(gen, v.class_embedding.shape, w ** -0.5))
        v.positional_embedding.copy_(_normal(gen, v.positional_embedding.shape, w ** -0.5))
        init_layer_norm(gen, v.ln_pre)
        init_transformer(gen, v.transformer, w, s.image_layers)
        init_layer_norm(gen, v.ln_post)
        v.proj.copy_(_normal(gen, v.proj.shape, w ** -0.5))
        return ImageCLIP(clip).eval()
    w = s.text_width
    # token embeddings larger than CLIP's 0.02 so the embedding (not only the positional part) matters
    clip.token_embedding.weight.copy_(_normal(gen, clip.token_embedding.weight.shape, 0.1))
    clip.positional_embedding.copy_(_normal(gen, clip.positional_embedding.shape, 0.05))
    init_transformer(gen, clip.transformer, w, s.text_layers)
    init_layer_norm(gen, clip.ln_final)
    clip.text_projection.copy_(_normal(gen, clip.text_projection.shape, w ** -0.5))
    return TextCLIP(clip).eval()


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def make_text_tokens(rng: np.random.Generator, rows: int, context: int = 77) -> np.ndarray:
    """Rows of [49406, k random ids in [1, 49405] (k in [1, 40]), 49407, zeros...]: unique EOT is the max id."""
    out = np.zeros((rows, context), dtype=np.int64)
    for r in range(rows):
        k = int(rng.integers(1, 41))
        out[r, 0] = 49406
        out[r, 1:1 + k] = rng.integers(1, 49406, size=k)
        out[r, 1 + k] = 49407
    return out


def make_image(rng: np.random.Generator, n: int, res: int = 224) -> np.ndarray:
    """Normalized-image-like input: smooth pixels in [0, 1] normalized with CLIP mean/std, NCHW float32."""
    low = rng.random((n, 3, res // 16, res // 16), dtype=np.float32)
    img = np.repeat(np.repeat(low, 16, axis=2), 16, axis=3)
    img = np.clip(img + 0.08 * rng.standard_normal(img.shape, dtype=np.float32), 0.0, 1.0)
    img = (img - CLIP_MEAN[None, :, None, None]) / CLIP_STD[None, :, None, None]
    return np.ascontiguousarray(img, dtype=np.float32)


def make_input(kind: str, s: Sizes, batch: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "image":
        return make_image(rng, batch, s.resolution)
    if kind == "text":
        return make_text_tokens(rng, batch, s.context)
    return rng.standard_normal((batch, s.frames, s.embed_dim), dtype=np.float32)


DECLARED_BATCH = {"image": 8, "text": 1, "fusion": 1}


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def emulate_181_passes():
    """Switch off the exporter passes torch 1.8.1 did not have: JIT CSE and initializer de-duplication.

    torch's TorchScript exporter looks both up on `torch._C` at call time
    (torch/onnx/_internal/torchscript_exporter/utils.py: `_C._jit_pass_cse(graph)` in `_optimize_graph`,
    `_C._jit_pass_onnx_deduplicate_initializers(graph, params_dict, training)` in `_export`).
    """
    c = torch._C
    saved = (c._jit_pass_cse, c._jit_pass_onnx_deduplicate_initializers)
    c._jit_pass_cse = lambda graph: False
    c._jit_pass_onnx_deduplicate_initializers = lambda graph, params_dict, training: params_dict
    try:
        yield
    finally:
        c._jit_pass_cse, c._jit_pass_onnx_deduplicate_initializers = saved


def export_one(kind: str, s: Sizes, variant: str, seed: int, out_dir: str, check: bool) -> dict:
    import onnx

    model = build_model(kind, s, seed)
    rng = np.random.default_rng(seed + 100)
    declared = DECLARED_BATCH[kind]
    x = make_input(kind, s, declared, rng)
    xt = torch.from_numpy(x)
    in_name, out_name = INPUT_NAMES[kind], OUTPUT_NAMES[kind]
    path = os.path.join(out_dir, FILE_NAMES[kind])

    with torch.no_grad():
        ref = model(xt).numpy()
    out_shape = list(ref.shape)

    t0 = time.time()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about size() -> int are expected (that is the point)
        if variant == "emu181":
            dyn = {in_name: {i: f"{in_name}_dim{i}" for i in range(x.ndim)}}
            with emulate_181_passes():
                torch.onnx.export(model, (xt,), path, dynamo=False, opset_version=10,
                                  input_names=[in_name], output_names=[out_name], dynamic_axes=dyn,
                                  do_constant_folding=True)
        else:
            torch.onnx.export(model, (xt,), path, dynamo=False, opset_version=10,
                              input_names=[in_name], output_names=[out_name], do_constant_folding=True)
    m = onnx.load(path)
    if variant == "emu181":
        finalize_emu181(m, in_name, list(x.shape), out_name, out_shape)
    mark_standin(m)
    onnx.save(m, path)
    export_seconds = time.time() - t0

    onnx.checker.check_model(path, full_check=True)
    info = {"kind": kind, "path": path, "bytes": os.path.getsize(path), "seconds": export_seconds,
            "ir_version": m.ir_version, "opset": [(o.domain, o.version) for o in m.opset_import],
            "nodes": len(m.graph.node), "initializers": len(m.graph.initializer),
            "histogram": collections.Counter(n.op_type for n in m.graph.node),
            "output_std": float(ref.std())}
    if check:
        info["checks"] = run_checks(kind, s, model, m, x, ref, variant, rng)
    return info


STANDIN_KEY = "action_clip_standin"
STANDIN_NOTE = "random weights from Reference/export_standins.py"


def mark_standin(m) -> None:
    """Record in metadata_props that the weights are random, so `action-clip` can warn that the
    scores mean nothing (ModelOptions.loadNetworks looks for this key)."""
    for prop in m.metadata_props:
        if prop.key == STANDIN_KEY:
            prop.value = STANDIN_NOTE
            return
    entry = m.metadata_props.add()
    entry.key, entry.value = STANDIN_KEY, STANDIN_NOTE


def finalize_emu181(m, in_name: str, in_shape: list[int], out_name: str, out_shape: list[int]) -> None:
    """Static declared shapes back on the graph I/O, no value_info, IR 5 (what torch 1.8.1 wrote at opset 10)."""
    def set_dims(vi, dims):
        shape = vi.type.tensor_type.shape
        del shape.dim[:]
        for d in dims:
            shape.dim.add().dim_value = d
    for vi in m.graph.input:
        if vi.name == in_name:
            set_dims(vi, in_shape)
    for vi in m.graph.output:
        if vi.name == out_name:
            set_dims(vi, out_shape)
    del m.graph.value_info[:]
    m.ir_version = 5


def relax_batch(m):
    """Copy of the model with the first dim of every graph input/output made symbolic."""
    import onnx
    mm = onnx.ModelProto()
    mm.CopyFrom(m)
    for vi in list(mm.graph.input) + list(mm.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims):
            dims[0].Clear()
            dims[0].dim_param = "batch"
    return mm


def ort_run(m, name: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {name: x})[0]


def run_checks(kind, s, model, m, x, ref, variant, rng) -> list[str]:
    lines = []
    in_name = INPUT_NAMES[kind]
    got = ort_run(m, in_name, x)
    diff = float(np.max(np.abs(got - ref)))
    finite = bool(np.isfinite(got).all())
    lines.append(f"batch {x.shape[0]} (declared): shape {list(got.shape)} max abs diff {diff:.3g}"
                 f" finite={finite} out std {ref.std():.3g}")
    if diff > 1e-4 or not finite:
        raise SystemExit(f"check failed for {kind}: ORT differs from torch by {diff}")
    if variant == "emu181":
        big = DECLARED_BATCH[kind] * 2 if kind == "image" else 3
        xb = make_input(kind, s, big, rng)
        with torch.no_grad():
            refb = model(torch.from_numpy(xb)).numpy()
        gotb = ort_run(relax_batch(m), in_name, xb)
        diffb = float(np.max(np.abs(gotb - refb)))
        lines.append(f"batch {big}: shape {list(gotb.shape)} max abs diff {diffb:.3g}")
        if diffb > 1e-4:
            raise SystemExit(f"check failed for {kind} at batch {big}: diff {diffb}")
        # non-degeneracy: different inputs must give different outputs
        spread = float(np.max(np.abs(refb - refb[:1])))
        lines.append(f"output spread across batch rows: {spread:.3g}")
        if spread < 1e-3:
            raise SystemExit(f"{kind}: outputs barely vary with the input ({spread})")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--size", choices=sorted(SIZES), default="tiny")
    p.add_argument("--variant", choices=["emu181", "default"], default="emu181")
    p.add_argument("--only", choices=["image", "text", "fusion"], action="append",
                   help="export only this model (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="verify with onnxruntime against torch")
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    kinds = a.only or ["image", "text", "fusion"]
    for kind in kinds:
        info = export_one(kind, SIZES[a.size], a.variant, a.seed, a.out, a.check)
        print(f"== {kind}: {info['path']}  {info['bytes'] / 1e6:.2f} MB  export {info['seconds']:.1f} s  "
              f"ir {info['ir_version']} opset {info['opset']}  nodes {info['nodes']}  "
              f"initializers {info['initializers']}")
        hist = ", ".join(f"{k} {v}" for k, v in info["histogram"].most_common())
        print(f"   ops: {hist}")
        for line in info.get("checks", []):
            print(f"   check: {line}")
        if a.check:
            print("   onnx.checker.check_model(full_check=True): OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
