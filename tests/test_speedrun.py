"""The speedrun preset (fmnist.speedrun): what it times and counts. Its figures come from a GPU run; here the
parts that decide whether those figures mean what they say."""

import torch

from fmnist import speedrun
from fmnist.models import build_model


def test_each_run_starts_from_the_initialisation_a_fresh_model_of_its_seed_gets():
    cfg = speedrun.SpeedrunConfig(model="basic_cnn")
    model = build_model("basic_cnn")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # as if trained by the run before
    speedrun._reset(model, cfg, torch.device("cpu"), seed=3, total_steps=10)
    torch.manual_seed(3)
    fresh = build_model("basic_cnn")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))


def test_the_flop_floor_counts_forward_and_backward():
    cfg = speedrun.SpeedrunConfig(model="mlp")
    flops = speedrun.step_flops(cfg, torch.device("cpu"))
    params = sum(p.numel() for p in build_model("mlp").parameters())
    # an MLP's matrix products: 2 FLOPs per weight forward and 2 for its weight gradient, 2 more for the input
    # gradient of every layer but the first (the image needs none); the first layer holds 92 % of the weights
    assert 4 * params < flops < 4.5 * params


def test_flags_override_the_preset_only_where_given():
    from train import _explicit_flags, build_parser, parse_args

    argv = ["--preset", "speedrun", "--epochs", "3", "--models", "deep_cnn"]
    cfg, _ = parse_args(argv)
    preset = speedrun.from_flags(cfg, _explicit_flags(build_parser(), argv), runs=5)
    default = speedrun.SpeedrunConfig()
    assert (preset.epochs, preset.model, preset.runs) == (3, "deep_cnn", 5)
    assert (preset.batch_size, preset.lr) == (default.batch_size, default.lr)  # train.py's 256 does not leak in
