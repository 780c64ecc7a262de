"""Speed options: mixed precision, channels_last and torch.compile (checkpoints load either way).

Inductor compiles for minutes on a 2-core CPU, so the fast tests swap in a counting eager backend
(Dynamo still traces the U-Nets, which is what decides whether a call is compiled); the real
inductor compile runs under ``-m slow`` and on a GPU under ``-m gpu`` (scripts/gpu_check.sh).
"""

from __future__ import annotations

import math

import pytest
import torch

from wnet_seg.checkpoint import load_wnet, read_checkpoint
from wnet_seg.config import validate
from wnet_seg.lightning_module import WNetModule
from wnet_seg.train import build_module, train

from .conftest import compose_train

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def traced(monkeypatch):
    """Make ``nn.Module.compile`` use an eager backend that records which modules Dynamo traced."""
    traced: list[str] = []
    original = torch.nn.Module.compile

    def compile_eager(self, *args, **kwargs):
        name = type(self).__name__

        def backend(gm, example_inputs):
            traced.append(name)
            return gm.forward

        return original(self, backend=backend)

    monkeypatch.setattr(torch.nn.Module, "compile", compile_eager)
    torch._dynamo.reset()
    yield traced
    torch._dynamo.reset()


def finite_metrics(result: dict, val: bool = True) -> None:
    keys = ("train/ncut", "train/recon", *(("val/loss", "val/miou") if val else ()))
    for key in keys:
        assert math.isfinite(result["metrics"][key]), (key, result["metrics"])


def test_compile_covers_encode_and_checkpoints_load_both_ways(tmp_path, tiny_overrides, traced):
    base = [*tiny_overrides, "trainer.max_epochs=5", "trainer.num_sanity_val_steps=0"]
    # compile=true, alternating schedule: the N-cut step calls net.encode, then net(x).
    first = train(compose_train([*base, "compile=true", "trainer.max_steps=2"], tmp_path / "c"))
    finite_metrics(first, val=False)  # stopped after one batch, before validation
    assert traced.count("UNet") >= 2, traced  # encoder (via net.encode) and decoder
    ckpt = read_checkpoint(first["last_ckpt"])
    plain = WNetModule.from_checkpoint(first["last_ckpt"], compile=False)
    assert set(ckpt["state_dict"]) == set(plain.state_dict())  # net.encoder.*, no _orig_mod
    assert load_wnet(first["last_ckpt"]).model.num_classes == 4

    # Resume that checkpoint without compile, then load the result into a compiled module.
    resumed = train(
        compose_train(
            [*base, "trainer.max_steps=4", f"ckpt_path={first['last_ckpt']}"], tmp_path / "p"
        )
    )
    finite_metrics(resumed)
    state = read_checkpoint(resumed["last_ckpt"])
    assert state["global_step"] == 4
    compiled = WNetModule.from_checkpoint(resumed["last_ckpt"], compile=True)
    assert compiled.net.encoder._compiled_call_impl is not None
    image = torch.rand(1, 3, 32, 32)
    plain.load_state_dict(state["state_dict"])
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(image)[0], plain.eval()(image)[0])


def test_bf16_mixed_one_batch_is_finite(tmp_path, tiny_overrides):
    result = train(
        compose_train([*tiny_overrides, "debug=fdr", "trainer.precision=bf16-mixed"], tmp_path)
    )
    finite_metrics(result)


def test_channels_last_one_batch(tmp_path, tiny_overrides):
    cfg = compose_train([*tiny_overrides, "debug=fdr", "channels_last=true"], tmp_path)
    module = build_module(validate(cfg))
    conv = module.net.encoder.down[0][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert module.net.normalize(torch.rand(2, 3, 16, 16)).is_contiguous(
        memory_format=torch.channels_last
    )
    finite_metrics(train(cfg))


@pytest.mark.slow
def test_inductor_compile_one_batch_cpu(tmp_path, tiny_overrides):
    """The real default backend (inductor) on CPU: minutes on 2 cores."""
    torch._dynamo.reset()
    finite_metrics(train(compose_train([*tiny_overrides, "debug=fdr", "compile=true"], tmp_path)))


@pytest.mark.gpu
@requires_cuda
def test_gpu_fast_path_one_batch(tmp_path, tiny_overrides):
    """bf16-mixed + channels_last + inductor compile on a GPU, then load the checkpoint on CPU."""
    torch._dynamo.reset()
    overrides = [
        *tiny_overrides,
        "trainer=gpu",
        "trainer.max_steps=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.precision=bf16-mixed",
        "channels_last=true",
        "compile=true",
    ]
    result = train(compose_train(overrides, tmp_path))
    finite_metrics(result, val=False)
    loaded = load_wnet(result["last_ckpt"])
    with torch.no_grad():
        probs = loaded.model(torch.rand(1, 3, 32, 32))[0]
    assert torch.allclose(probs.sum(1), torch.ones(1, 32, 32), atol=1e-4)


@pytest.mark.gpu
@requires_cuda
def test_gpu_fp16_mixed_one_batch(tmp_path, tiny_overrides):
    overrides = [*tiny_overrides, "trainer=gpu", "debug=fdr", "trainer.precision=16-mixed"]
    finite_metrics(train(compose_train(overrides, tmp_path)))


@pytest.mark.gpu
@requires_cuda
def test_gpu_matches_cpu_forward():
    """The same weights give the same soft segmentation on GPU as on CPU (TF32 convs allowed)."""
    module = WNetModule(
        model=dict(in_channels=3, num_classes=6, base_width=8, depth=3, separable=True),
        loss={},
        optim={"name": "adam", "lr": 1e-3},
        norm={"mean": [0.5] * 3, "std": [0.25] * 3},
    ).eval()
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        cpu = module(image)[0]
        gpu = module.cuda()(image.cuda())[0].cpu()
    torch.testing.assert_close(gpu, cpu, atol=2e-3, rtol=0)
