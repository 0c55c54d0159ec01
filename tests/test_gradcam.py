import threading

import numpy as np
import pytest
import torch

from fmnist.explain.gradcam import grad_cam, overlay
from fmnist.models.registry import MODEL_NAMES, build_model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_agrees_with_pytorch_grad_cam(name):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.rand(3, 1, 28, 28)
    targets = [1, 4, 7]
    mine, _ = grad_cam(model, x, target=targets)
    with GradCAM(model=model, target_layers=[model.get_submodule(model.gradcam_layer)]) as ref_cam:
        ref = ref_cam(
            input_tensor=x.clone().requires_grad_(True),  # the MLP's map is its input
            targets=[ClassifierOutputTarget(t) for t in targets],
        )
    assert mine.shape == ref.shape == (3, 28, 28)
    assert np.abs(mine - ref).max() < 1e-4
    assert mine.min() >= 0 and mine.max() <= 1


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_leaves_the_model_as_it_was(mode):
    model = build_model("deep_cnn")
    model.train(mode == "train")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad_cam(model, torch.rand(2, 1, 28, 28))
    assert model.training == (mode == "train")
    assert all(p.grad is None for p in model.parameters())
    if mode == "eval":  # BatchNorm statistics are untouched too
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not any(m._forward_hooks or m._backward_hooks for m in model.modules())


def test_default_target_is_the_predicted_class():
    torch.manual_seed(0)
    model = build_model("basic_cnn").eval()
    x = torch.rand(4, 1, 28, 28)
    cams, logits = grad_cam(model, x)
    explicit, _ = grad_cam(model, x, target=logits.argmax(1).tolist())
    assert np.allclose(cams, explicit)


def test_short_target_list_is_refused():
    with pytest.raises(ValueError, match="2 targets for a batch of 3"):
        grad_cam(build_model("mlp").eval(), torch.rand(3, 1, 28, 28), target=[1, 2])


def test_concurrent_requests_on_one_model_match_serial_ones():
    torch.manual_seed(0)
    model = build_model("resnet").eval()
    inputs = [torch.rand(1, 1, 28, 28) for _ in range(8)]
    serial = [grad_cam(model, x)[0] for x in inputs]
    results = [None] * len(inputs)
    barrier = threading.Barrier(len(inputs))

    def work(i):
        barrier.wait()  # all start together
        results[i] = grad_cam(model, inputs[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        assert np.allclose(a, b, atol=1e-5)


def test_overlay_is_a_colour_image_of_the_asked_size():
    img = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    cam = np.zeros((28, 28), np.float32)
    cam[10:18, 10:18] = 1
    out = overlay(img, cam, size=280)
    assert out.size == (280, 280) and out.mode == "RGB"
    arr = np.asarray(out).astype(int)
    hot, cold = arr[140, 140], arr[5, 5]
    assert hot[0] > hot[2] and cold[2] >= cold[0]  # jet: red where the map is high, blue where it is low
