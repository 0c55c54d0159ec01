"""The speedrun preset (fmnist.training.speedrun): what it times and counts. Its figures come from a GPU run; here the
parts that decide whether those figures mean what they say."""

import torch

from fmnist.models.registry import build_model
from fmnist.training import speedrun


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


def test_flags_override_the_preset_only_where_given(monkeypatch):
    argv = ["--epochs", "3", "--model", "deep_cnn"]
    got = {}

    def run(preset, *args, **kwargs):  # the preset the command would time, not a timed run
        got["preset"] = preset
        return {"runs": []}

    monkeypatch.setattr(speedrun, "run", run)
    monkeypatch.setattr(speedrun, "format_runs", lambda result: "")
    assert speedrun.main(argv) == 0
    preset, default = got["preset"], speedrun.SpeedrunConfig()
    assert (preset.epochs, preset.model, preset.runs) == (3, "deep_cnn", default.runs)
    assert (preset.batch_size, preset.lr) == (default.batch_size, default.lr)  # train.py's 256 does not leak in
