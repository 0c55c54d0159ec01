import pytest
import torch

from fmnist.models.registry import MODEL_NAMES, build_model, count_parameters

# Parameter counts follow from the seed architectures (e.g. the MLP: 784*128+128 + 128*64+64 + 64*10+10).
EXPECTED_PARAMS = {
    "mlp": 109_386,
    "basic_cnn": 173_738,
    "deep_cnn": 897_482,
    "resnet": 696_042,
    "mobilenet": 1_527_818,
    "wide_resnet": 2_748_602,
}  # WRN-16-4


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shape_and_parameter_count(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    out = model(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    assert count_parameters(model) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_model_names_a_gradcam_layer_with_a_map(name):
    model = build_model(name).eval()
    seen = {}
    layer = model.get_submodule(model.gradcam_layer)
    handle = layer.register_forward_hook(lambda m, i, o: seen.update(shape=o.shape))
    model(torch.rand(2, 1, 28, 28))
    handle.remove()
    b, c, h, w = seen["shape"]
    assert b == 2 and h * w > 1  # MobileNet too: the upsampled input leaves a map larger than 1x1


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")


def test_mobilenet_refuses_a_1x1_resolution():
    with pytest.raises(ValueError, match="1x1"):
        build_model("mobilenet", img_size=32)


def test_mobilenet_loads_imagenet_style_weights_from_a_local_file(tmp_path):
    """The offline path of `pretrained=True`: a 3-channel, 1000-class timm state dict in a file."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("mobilenetv3_small_100", pretrained=False)  # stands in for ImageNet weights
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    model = build_model("mobilenet", pretrained=str(path))
    src = source.state_dict()
    # timm sums the RGB stem filters into the one grey channel
    assert torch.allclose(model.body.conv_stem.weight, src["conv_stem.weight"].sum(1, keepdim=True), atol=1e-6)
    assert torch.equal(model.body.blocks[3][0].conv_pw.weight, src["blocks.3.0.conv_pw.weight"])
    assert model.body.classifier.out_features == 10  # the 1000-class head is replaced


def test_mobilenet_missing_weights_file_is_clear():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model("mobilenet", pretrained="/nonexistent/weights.safetensors")
