"""Backbones carry torchvision's parameter names and counts; heads give 64x48 heatmaps; lite is >= 3x cheaper."""
import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from edge_pose.models import build_model, load_backbone_weights  # noqa: E402


def torchvision_resnet18_keys():
    """(name, shape) of torchvision.models.resnet18().state_dict(), written out from its documented structure."""
    keys = [("conv1.weight", (64, 3, 7, 7))]

    def bn(prefix, c):
        return [(prefix + ".weight", (c,)), (prefix + ".bias", (c,)), (prefix + ".running_mean", (c,)),
                (prefix + ".running_var", (c,)), (prefix + ".num_batches_tracked", ())]

    keys += bn("bn1", 64)
    cin = 64
    for layer, c in zip(range(1, 5), (64, 128, 256, 512)):
        for block in range(2):
            p = "layer%d.%d" % (layer, block)
            first_in = cin if block == 0 else c
            keys += [(p + ".conv1.weight", (c, first_in, 3, 3))] + bn(p + ".bn1", c)
            keys += [(p + ".conv2.weight", (c, c, 3, 3))] + bn(p + ".bn2", c)
            if block == 0 and layer > 1:
                keys += [(p + ".downsample.0.weight", (c, cin, 1, 1))] + bn(p + ".downsample.1", c)
        cin = c
    keys += [("fc.weight", (1000, 512)), ("fc.bias", (1000,))]
    return keys


def test_resnet18_loads_a_torchvision_state_dict_strictly():
    model = build_model("resnet18", "lite")
    sd = {name: torch.randn(shape) if shape else torch.tensor(0) for name, shape in torchvision_resnet18_keys()}
    load_backbone_weights(model, sd)
    assert torch.equal(model.backbone.layer3[0].downsample[0].weight, sd["layer3.0.downsample.0.weight"])
    # torchvision documents 11,689,512 parameters for resnet18, of which fc has 512*1000+1000
    n = sum(p.numel() for p in model.backbone.parameters())
    assert n == 11_689_512 - 513_000


def test_mobilenetv3_has_torchvision_names_and_counts():
    model = build_model("mobilenetv3", "lite")
    sd = model.backbone.state_dict()
    # shapes of a few torchvision mobilenet_v3_large keys (first conv, a block without expansion, an SE, last conv)
    expected = {"features.0.0.weight": (16, 3, 3, 3), "features.1.block.0.0.weight": (16, 1, 3, 3),
                "features.4.block.2.fc1.weight": (24, 72, 1, 1), "features.13.block.1.0.weight": (672, 1, 5, 5),
                "features.16.0.weight": (960, 160, 1, 1), "features.16.1.running_var": (960,)}
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    # torchvision documents 5,483,032 parameters; the classifier (960->1280->1000) has 2,511,080 of them
    assert sum(p.numel() for p in model.backbone.parameters()) == 5_483_032 - 2_511_080
    full = dict(sd)
    full.update({"classifier.0.weight": torch.zeros(1280, 960), "classifier.0.bias": torch.zeros(1280),
                 "classifier.3.weight": torch.zeros(1000, 1280), "classifier.3.bias": torch.zeros(1000)})
    load_backbone_weights(model, full)
    with pytest.raises(RuntimeError):
        del full["features.16.0.weight"]
        load_backbone_weights(model, full)


def gflops(model, h=256, w=192):
    with FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, h, w))
    return fc.get_total_flops() / 1e9


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenetv3"])
def test_heads_shapes_and_lite_is_3x_cheaper(backbone):
    deconv, lite = build_model(backbone, "deconv").eval(), build_model(backbone, "lite").eval()
    with torch.no_grad():
        assert tuple(deconv(torch.zeros(2, 3, 256, 192)).shape) == (2, 17, 64, 48)
        assert tuple(lite(torch.zeros(2, 3, 256, 192)).shape) == (2, 17, 64, 48)
        base = gflops(deconv.backbone)
        head_deconv = gflops(deconv) - base
        head_lite = gflops(lite) - base
    assert head_deconv > 3 * head_lite
    assert 2.0 < head_deconv < 2.6  # Simple Baselines' 3 x deconv 256 head at 256x192
