"""A literal transcription of the authors' SymUNet baseline (their module names, their
hand-written LayerNorm on a (B, HW, C) view, their padding, NCHW fp32). Tests use it to prove that
checkpoints saved by their code give the same pixels in airtool; ``tools.bench_reference`` uses it
as the "straightforward transcription" that airtool's fast path is timed against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WithBiasLN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        sigma = x.var(-1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(sigma + 1e-5) * self.weight + self.bias


class LN(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.body = WithBiasLN(dim)

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.body(x.flatten(2).transpose(1, 2))
        return y.transpose(1, 2).reshape(b, c, h, w)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, 1, 1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class FeedForward(nn.Module):
    def __init__(self, dim, factor):
        super().__init__()
        hidden = int(dim * factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, 1, 1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x):
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class Block(nn.Module):
    def __init__(self, dim, heads, factor=2.66):
        super().__init__()
        self.norm1, self.attn = LN(dim), Attention(dim, heads)
        self.norm2, self.ffn = LN(dim), FeedForward(dim, factor)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class ReferenceSymUNet(nn.Module):
    def __init__(self, width=48, enc=(4, 6, 6), middle=8, dec=(6, 6, 4), heads=(1, 2, 4), middle_heads=8):
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, 1, 1, bias=True)
        self.ending = nn.Conv2d(width, 3, 3, 1, 1, bias=True)
        self.encoders, self.decoders, self.ups, self.downs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        chan = width
        for i, n in enumerate(enc):
            self.encoders.append(nn.Sequential(*[Block(chan, heads[i]) for _ in range(n)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(*[Block(chan, middle_heads) for _ in range(middle)])
        for i, n in enumerate(dec):
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[Block(chan, heads[len(enc) - 1 - i]) for _ in range(n)]))
        self.padder_size = (2 ** len(self.encoders)) * 4

    def forward(self, inp):
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
        x = self.middle_blks(x)
        for decoder, up, skip in zip(self.decoders, self.ups, encs[::-1], strict=True):
            x = decoder(up(x) + skip)
        return (self.ending(x) + inp)[:, :, :h, :w]
