"""OpenAI's ViT-L-14.pt layout (a TorchScript archive) read without running it, and renamed exactly."""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict

import pytest
import torch
from torch import nn

from airtool.errors import WeightsError
from airtool.models.clip_encoder import load_clip_encoder
from airtool.models.openai_clip import read_openai_state


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualBlock(nn.Module):
    """OpenAI's block: pre-LN fused-qkv attention and a 4x QuickGELU MLP, sequence-first."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    """Names and maths of OpenAI's CLIP ViT; returns the tokens before ln_post (transformers'
    ``last_hidden_state``)."""

    def __init__(self, size: int = 28, patch: int = 14, width: int = 128, layers: int = 2) -> None:
        super().__init__()
        grid = size // patch
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(width) * width**-0.5)
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) * width**-0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, width // 64)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, 16))

    def forward(self, x):
        x = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        return self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)


class OpenAIStyleCLIP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.visual = VisionTransformer()
        self.token_embedding = nn.Embedding(50, 32)
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, image):
        return self.visual(image)


@pytest.fixture(scope="module")
def openai_clip():
    torch.manual_seed(0)
    model = OpenAIStyleCLIP().eval()
    for p in model.parameters():  # LayerNorms and biases off their init values
        p.data.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("layout", ["torchscript", "state_dict", "fp16"])
def test_openai_checkpoint_gives_the_same_tokens(layout, openai_clip, tmp_path):
    path = tmp_path / "ViT-tiny.pt"
    example = torch.rand(1, 3, 28, 28)
    if layout == "state_dict":
        torch.save(openai_clip.state_dict(), path)
    else:
        model = openai_clip.half() if layout == "fp16" else openai_clip
        torch.jit.save(torch.jit.trace(model, example.to(next(model.parameters()).dtype)), str(path))
        openai_clip.float()
    encoder = load_clip_encoder(path)
    image = torch.rand(2, 3, 50, 41)
    with torch.no_grad():
        expected = openai_clip(encoder.preprocess(image))
    tolerance = 2e-2 if layout == "fp16" else 1e-5
    assert encoder.hidden_size == 128 and encoder.vision.config.num_attention_heads == 2
    assert torch.allclose(encoder(image), expected, atol=tolerance)


def test_archive_code_is_never_run_and_foreign_globals_are_refused(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(Payload(), protocol=2))
        archive.writestr("evil/code/__torch__.py", "import os\nos.system('touch ran')\n")
        archive.writestr("evil/version", "3\n")
    with pytest.raises(WeightsError, match=r"refused global (posix|os|nt)\.system"):
        read_openai_state(path)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="not a CLIP checkpoint archive"):
        load_clip_encoder(tmp_path / "junk.pt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_archive_without_a_vision_tower_is_one_line(tmp_path):
    path = tmp_path / "other.pt"
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(path))
    with pytest.raises(WeightsError, match="not an OpenAI CLIP ViT checkpoint"):
        load_clip_encoder(path)
