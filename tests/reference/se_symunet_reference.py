"""A plain transcription of the authors' SE-SymUNet forward (their module names, explicit
softmax attention, ``F.unfold``/``F.fold`` for patches), on top of ``ReferenceSymUNet``.

Tests use it to show that a state dict in the authors' layout gives the same pixels in airtool.
CLIP is not part of it: the caller passes the semantic tokens ``z``, and ``positions(name, rows, cols)``
supplies each module's positional embedding for a rows x cols patch grid (the authors draw it with
``torch.randn``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.reference.symunet_reference import ReferenceSymUNet


class RefCrossAttention(nn.Module):
    def __init__(self, query_dim, context_dim, inner_dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (inner_dim // heads) ** -0.5
        self.norm_query, self.norm_context = nn.LayerNorm(query_dim), nn.LayerNorm(context_dim)
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(context_dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim), nn.Dropout(0.0))

    def split(self, t):
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3)

    def forward(self, query, context):
        query, context = self.norm_query(query), self.norm_context(context)
        q, k, v = self.split(self.to_q(query)), self.split(self.to_k(context)), self.split(self.to_v(context))
        weights = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        out = weights @ v
        return self.to_out(out.permute(0, 2, 1, 3).flatten(2))


class RefGuide(nn.Module):
    def __init__(self, image_dim, text_dim, inner_dim, heads, patch):
        super().__init__()
        self.patch = patch
        self.attention = RefCrossAttention(image_dim * patch * patch, text_dim, inner_dim, heads)
        self.alpha = nn.Parameter(torch.tensor(1e-4))

    def forward(self, x, z, pos):
        p = self.patch
        patches = F.unfold(x, p, stride=p).transpose(1, 2)  # (B, L, C*p*p), L row-major
        update = self.attention(patches + pos, z)
        return x + self.alpha * F.fold(update.transpose(1, 2), x.shape[-2:], p, stride=p)


class RefRefine(nn.Module):
    def __init__(self, text_dim, image_dim, inner_dim, heads, patch):
        super().__init__()
        self.patch = patch
        self.attention = RefCrossAttention(text_dim, image_dim * patch * patch, inner_dim, heads)
        self.alpha = nn.Parameter(torch.tensor(1e-4))

    def forward(self, z, x, pos):
        patches = F.unfold(x, self.patch, stride=self.patch).transpose(1, 2)
        return z + self.alpha * self.attention(z, patches + pos)


class ReferenceSESymUNet(ReferenceSymUNet):
    def __init__(self, width=48, enc=(4, 6, 6), middle=8, dec=(6, 6, 4), heads=(1, 2, 4), middle_heads=8,
                 text_dim=1024, inner_dims=(1024, 1024, 1024), cross_heads=(1, 2, 4), patch_sizes=(4, 4, 4),
                 middle_inner=1024, middle_cross_heads=8, middle_patch=2):
        super().__init__(width, enc, middle, dec, heads, middle_heads)
        chan = width * 2 ** len(enc)
        self.middle_guide_attention = RefGuide(chan, text_dim, middle_inner, middle_cross_heads, middle_patch)
        self.middle_refine_attention = RefRefine(text_dim, chan, middle_inner, middle_cross_heads, middle_patch)
        self.decoder_guide_attentions, self.decoder_refine_attentions = nn.ModuleList(), nn.ModuleList()
        for i in range(len(dec)):
            chan //= 2
            s = len(enc) - 1 - i
            self.decoder_guide_attentions.append(RefGuide(chan, text_dim, inner_dims[s], cross_heads[s], patch_sizes[s]))
            self.decoder_refine_attentions.append(RefRefine(text_dim, chan, inner_dims[s], cross_heads[s], patch_sizes[s]))

    def forward(self, inp: Tensor, z: Tensor, positions: Callable[[str, int, int], Tensor]) -> Tensor:
        _, _, h, w = inp.shape
        ph = (self.padder_size - h % self.padder_size) % self.padder_size
        pw = (self.padder_size - w % self.padder_size) % self.padder_size
        inp = F.pad(inp, (0, pw, 0, ph), "reflect")
        x = self.intro(inp)
        encs = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            encs.append(x)
            x = down(x)

        def pos(name, module, feat):
            return positions(name, feat.shape[-2] // module.patch, feat.shape[-1] // module.patch)

        x = self.middle_guide_attention(x, z, pos("middle_guide_attention", self.middle_guide_attention, x))
        x = self.middle_blks(x)
        z = self.middle_refine_attention(z, x, pos("middle_refine_attention", self.middle_refine_attention, x))
        for i, (decoder, up, skip) in enumerate(zip(self.decoders, self.ups, encs[::-1], strict=True)):
            guide, refine = self.decoder_guide_attentions[i], self.decoder_refine_attentions[i]
            x = up(x) + skip
            x = guide(x, z, pos(f"decoder_guide_attentions.{i}", guide, x))
            x = decoder(x)
            z = refine(z, x, pos(f"decoder_refine_attentions.{i}", refine, x))
        return (self.ending(x) + inp)[:, :, :h, :w]
