"""Every user-facing knob is typed and range-checked, and the error names the key and the range.

Values go through the real composition (``conf/train.yaml`` + overrides) and
:func:`wnet_seg.config.validate`, as ``wnet-seg-train`` does. A completeness test lists the schema's
numeric and choice fields, so a new knob without a check (or an entry here) fails the suite.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import pytest

from wnet_seg.config import (
    ConfigError,
    DataConf,
    LossConf,
    ModelConf,
    OptimConf,
    TextureConf,
    TrainConf,
    validate,
)

from .conftest import REPO, compose_train

# (override, expected message): the message names the key and the allowed range or choices.
OUT_OF_RANGE = [
    ("model.num_classes=1", "model.num_classes must be >= 2, got 1"),
    ("model.preset=huge", "model.preset must be one of ['paper', 'small'], got 'huge'"),
    ("model.in_channels=4", "model.in_channels must be 3 (images are read as RGB), got 4"),
    ("model.base_width=0", "model.base_width must be >= 1, got 0"),
    ("model.depth=0", "model.depth must be in [1, 8], got 0"),
    ("model.depth=9", "model.depth must be in [1, 8], got 9"),
    ("model.dropout=1.0", "model.dropout must be in [0, 1), got 1.0"),
    ("loss.schedule=sometimes", "loss.schedule must be one of ['alternating', 'joint']"),
    ("loss.ncut_weight=-1", "loss.ncut_weight must be >= 0, got -1"),
    ("loss.recon_weight=-0.5", "loss.recon_weight must be >= 0, got -0.5"),
    ("loss.radius=0.5", "loss.radius must be >= 1, got 0.5"),
    ("loss.sigma_i=0", "loss.sigma_i must be > 0, got 0"),
    ("loss.sigma_x=-4", "loss.sigma_x must be > 0, got -4"),
    ("loss.nonfinite=ignore", "loss.nonfinite must be 'raise' or 'skip', got 'ignore'"),
    ("loss.features=sobel", "loss.features must be one of"),
    ("loss.texture.scales=[3]", "loss.texture must be left at its defaults unless loss.features"),
    ("loss.features=texture", None),  # valid: the feature helper's own choice
    ("loss.local_weight=-1", "loss.local_weight must be >= 0, got -1"),
    ("loss.global_weight=-1", "loss.global_weight must be >= 0, got -1"),
    ("loss.global_samples=1", "loss.global_samples must be >= 2, got 1"),
    ("loss.global_sigma=0", "loss.global_sigma must be > 0, got 0"),
    ("loss.global_rarity=-0.5", "loss.global_rarity must be >= 0, got -0.5"),
    ("loss.global_gate=-1", "loss.global_gate must be >= 0 (0: off), got -1"),
    ("loss.global_gate_floor=0", "loss.global_gate_floor must be in (0, 1], got 0"),
    ("loss.entropy_weight=-0.1", "loss.entropy_weight must be >= 0, got -0.1"),
    ("loss.local_weight=0", "loss.local_weight/global_weight must be not both 0"),
    ("loss.global_texture.scales=[0]", "loss.global_texture.scales must be sizes >= 1"),
    ("loss.global_texture.rgb_weight=-1", "loss.global_texture.rgb_weight must be >= 0"),
    ("loss.global_texture.mean_weight=-1", "loss.global_texture.mean_weight must be >= 0"),
    ("loss.global_texture.std_weight=-1", "loss.global_texture.std_weight must be >= 0"),
    ("loss.global_texture.window=round", "loss.global_texture.window must be one of"),
    ("loss.global_texture.scales=[]", "loss.global_texture must be a texture with at least one"),
    ("optim.name=rmsprop", "optim.name must be adam, adamw or sgd, got 'rmsprop'"),
    ("optim.lr=0", "optim.lr must be > 0, got 0"),
    ("optim.weight_decay=-1e-4", "optim.weight_decay must be >= 0"),
    ("optim.momentum=1", "optim.momentum must be in [0, 1), got 1"),
    ("optim.lr_step_epochs=0", "optim.lr_step_epochs must be >= 1 or null, got 0"),
    ("optim.lr_gamma=0", "optim.lr_gamma must be in (0, 1], got 0"),
    ("optim.lr_gamma=2", "optim.lr_gamma must be in (0, 1], got 2"),
    ("optim.grad_clip=0", "optim.grad_clip must be > 0, got 0"),
    ("data.kind=video", "data.kind must be one of ['overfit', 'screenshots'], got 'video'"),
    ("data.path=''", "data.path must be a file or folder path"),
    ("data.length=0", "data.length must be >= 1, got 0"),
    ("data.batch_size=0", "data.batch_size must be >= 1, got 0"),
    ("data.val_batch_size=0", "data.val_batch_size must be >= 1, got 0"),
    ("data.num_workers=-1", "data.num_workers must be >= 0, got -1"),
    ("data.crop_size=4", "data.crop_size must be >= 8 or null, got 4"),
    ("data.scale=0", "data.scale must be >= 1 (integer nearest-neighbour upscale), got 0"),
    ("data.val_fraction=1", "data.val_fraction must be in [0, 1), got 1"),
    ("data.max_val_images=0", "data.max_val_images must be >= 1 or null, got 0"),
    ("data.max_train_images=0", "data.max_train_images must be >= 1 or null, got 0"),
    ("data.augment_prob=1.5", "data.augment_prob must be in [0, 1], got 1.5"),
    ("data.colour_jitter=-0.1", "data.colour_jitter must be in [0, 1], got -0.1"),
    ("data.augment=[bilinear:1.5]", "data.augment must be conditions that keep the frame size"),
    ("data.augment=[sharpen:2]", "data.augment: degrade step 'sharpen:2'"),
    ("data.split_seed=-1", "data.split_seed must be >= 0, got -1"),
    ("data.std=[0.25,0,0.25]", "data.std must be all > 0"),
    ("data.mean=[0.5,0.5,2]", "data.mean must be all in [0, 1]"),
    ("data.mean=[0.5,0.5]", "data.mean/std must be lists of equal length"),
    ("data.on_bad_file=ignore", "data.on_bad_file must be 'skip' or 'fail', got 'ignore'"),
    ("seed=-1", "seed must be in [0, 2**32) or null, got -1"),
    ("task_name=a/b", "task_name must be a non-empty folder name without '/', got 'a/b'"),
    ("image_log_every_n_steps=0", "image_log_every_n_steps must be >= 1, got 0"),
    ("num_output_pngs=-1", "num_output_pngs must be >= 0, got -1"),
    ("save_every_n_steps=0", "save_every_n_steps must be >= 1 or null, got 0"),
]

# Wrong types and unknown keys fail while composing, naming the key.
WRONG_TYPE = [
    ("model.num_classes=abc", "num_classes"),
    ("model.num_clases=8", "num_clases"),
    ("loss.sigma_i=ten", "sigma_i"),
    ("data.batch_size=1.5", "batch_size"),
    ("data.aug=maybe", "aug"),
    ("data.mean=0.5", "mean"),
    ("save_every_n_steps=often", "save_every_n_steps"),
]

# Value fields that are deliberately not range-checked in the schema, with the reason.
UNCHECKED = {
    "data.mask_path": "a path: a missing or bad mask is reported by name when it is read",
    "data.masks_dir": "a path: a missing folder means no masks; bad masks are reported by name",
    "data.val_path": "a path: a missing folder or one with no readable image fails at set-up, named",
    "ckpt_path": "resolve_ckpt_path names a missing file; read_checkpoint explains a bad one",
    "init_from": "a checkpoint path or shipped: read_checkpoint/load_weights name a bad one",
    "optimized_metric": "checked against the logged metrics when the run ends",
}


def _needs_range_check(tp) -> bool:
    """int/float/str fields (optional or not) and lists of numbers; not bools, dicts, list[str]."""
    args = [a for a in (typing.get_args(tp) or (tp,)) if a is not type(None)]
    if typing.get_origin(tp) is dict:
        return False  # Lightning's own kwargs (trainer, callbacks...), checked by Lightning
    if typing.get_origin(tp) is list:
        return bool(set(typing.get_args(tp)) & {int, float})
    return any(a in (int, float, str) for a in args)


@pytest.mark.parametrize("override, message", OUT_OF_RANGE, ids=[o for o, _ in OUT_OF_RANGE])
def test_out_of_range_value_names_key_and_range(tmp_path, override, message):
    cfg = compose_train([override], tmp_path)
    if message is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert message in str(info.value)


@pytest.mark.parametrize("override, key", WRONG_TYPE, ids=[o for o, _ in WRONG_TYPE])
def test_wrong_type_or_unknown_key_fails_at_composition_naming_it(tmp_path, override, key):
    with pytest.raises(Exception, match=key):
        validate(compose_train([override], tmp_path))


def test_defaults_and_shipped_experiments_are_valid(tmp_path):
    validate(compose_train([], tmp_path))
    for experiment in ("overfit_demo", "paper"):
        validate(compose_train([f"experiment={experiment}"], tmp_path))
    validate(compose_train(["data=screenshots", "loss=joint", "optim=paper"], tmp_path))


def test_both_loss_weights_zero_is_refused(tmp_path):
    cfg = compose_train(["loss.ncut_weight=0", "loss.recon_weight=0"], tmp_path)
    with pytest.raises(ConfigError, match="loss.ncut_weight/recon_weight must be not both 0"):
        validate(cfg)


def test_every_value_knob_has_a_range_test():
    tested = {o.split("=", 1)[0] for o, _ in OUT_OF_RANGE}
    sections = [("model.", ModelConf), ("loss.", LossConf), ("optim.", OptimConf)]
    sections += [("loss.global_texture.", TextureConf)]  # loss.texture: same class, same checks
    sections += [("data.", DataConf), ("", TrainConf)]
    knobs = [
        prefix + f.name
        for prefix, cls in sections
        for f in dataclasses.fields(cls)
        if _needs_range_check(typing.get_type_hints(cls)[f.name])
    ]
    assert "model.num_classes" in knobs and "data.mean" in knobs and "seed" in knobs
    missing = [k for k in knobs if k not in tested and k not in UNCHECKED]
    assert not missing, (
        f"knobs without a range test: {missing}; add a check in wnet_seg/config.py and a case to "
        "OUT_OF_RANGE (or list the knob in UNCHECKED with the reason)"
    )


def test_cli_out_of_range_value_exits_2_with_the_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wnet_seg.train", "loss.sigma_x=0", f"paths.log_dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "loss.sigma_x must be > 0, got 0" in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "module, override, suggestion",
    [
        ("wnet_seg.train", "model.num_clases=8", "did you mean model.num_classes?"),
        ("wnet_seg.train", "data.batchsize=4", "did you mean data.batch_size?"),
        ("wnet_seg.segment", "overlay_alpa=0.3", "did you mean overlay_alpha?"),
        ("wnet_seg.evaluate", "degrad=jpeg:85", "did you mean degrade?"),
        ("wnet_seg.benchmark", "conditons=[clean]", "did you mean conditions?"),
    ],
)
def test_misspelled_key_names_the_nearest_valid_one(tmp_path, module, override, suggestion):
    proc = subprocess.run(
        [sys.executable, "-m", module, override, "input=x", "images=x", f"paths.log_dir={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert suggestion in proc.stderr and "Traceback" not in proc.stderr


def test_open_sections_and_group_choices_pass_the_key_check():
    from wnet_seg.overrides import unknown_key

    assert unknown_key("trainer.devices", TrainConf) is None  # Lightning's own kwargs
    assert unknown_key("loss.global_texture.scales", TrainConf) is None
    assert "did you mean loss.global_texture.scales" in unknown_key(
        "loss.global_texture.scale", TrainConf
    )
    assert "valid keys at model" in unknown_key("model.zzz", TrainConf)
