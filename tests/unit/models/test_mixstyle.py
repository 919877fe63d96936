"""MixStyle restyles feature maps in training only and keeps what they show.

A version that mixed the normalised content (not only the statistics) would blend two hands into
one; one active at inference would change every exported answer. Both are checked here.
"""

import pytest
import torch

from fingerspell.models.cnn import ClassicCNN
from fingerspell.models.mixstyle import MixStyle


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(2, 3)), x.std(dim=(2, 3))


def _styled_batch() -> torch.Tensor:
    """Features whose channels differ in mean and spread from image to image."""
    gen = torch.Generator().manual_seed(0)
    content = torch.randn(16, 6, 7, 7, generator=gen)
    scale = torch.rand(16, 6, 1, 1, generator=gen) * 3 + 0.2
    shift = torch.randn(16, 6, 1, 1, generator=gen) * 2
    return content * scale + shift


def test_training_mix_keeps_content_and_moves_statistics_between_images() -> None:
    x = _styled_batch()
    torch.manual_seed(1)
    out = MixStyle(p=1.0, alpha=0.1).train()(x)
    mu, sd = _stats(x)
    out_mu, out_sd = _stats(out)
    # what each map shows (its normalised pattern) is untouched
    torch.testing.assert_close(
        (out - out_mu[..., None, None]) / out_sd[..., None, None],
        (x - mu[..., None, None]) / sd[..., None, None],
        atol=1e-4,
        rtol=1e-4,
    )
    # the style changed, and every new mean lies within the batch's range (a convex mix)
    assert (out_mu - mu).abs().max() > 0.5
    assert (out_mu >= mu.min(0).values - 1e-4).all()
    assert (out_mu <= mu.max(0).values + 1e-4).all()


def test_identity_at_inference_and_when_not_drawn() -> None:
    x = _styled_batch()
    assert torch.equal(MixStyle(p=1.0).eval()(x), x)
    assert torch.equal(MixStyle(p=0.0).train()(x), x)
    assert torch.equal(MixStyle(p=1.0).train()(x[:1]), x[:1])  # nothing to mix with


def test_repeatable_under_a_seed() -> None:
    x = _styled_batch()
    mix = MixStyle(p=1.0).train()
    torch.manual_seed(3)
    first = mix(x)
    torch.manual_seed(3)
    assert torch.equal(mix(x), first)


@pytest.mark.parametrize("kwargs", [{"p": 1.5}, {"p": -0.1}, {"alpha": 0.0}])
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="MixStyle"):
        MixStyle(**kwargs)


def test_classic_cnn_refuses_a_negative_mixstyle_instead_of_training_without_it() -> None:
    with pytest.raises(ValueError, match="MixStyle p must be in"):
        ClassicCNN(1, 24, 0.2, 0.3, 28, mixstyle=-0.5)


def test_classic_cnn_with_mixstyle_has_the_same_weights_and_inference() -> None:
    torch.manual_seed(0)
    mixed = ClassicCNN(1, 24, 0.2, 0.3, 28, mixstyle=0.5)
    plain = ClassicCNN(1, 24, 0.2, 0.3, 28)
    assert list(mixed.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(mixed.state_dict())
    x = torch.randn(8, 1, 28, 28)
    torch.testing.assert_close(mixed.eval()(x), plain.eval()(x))
    # and in training it does change the forward pass (dropout off to isolate it)
    for net in (mixed, plain):
        net.train()
        for m in net.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    mixed.mixstyle.p = 1.0  # type: ignore[union-attr]
    torch.manual_seed(5)
    assert not torch.allclose(mixed(x), plain(x))


def test_a_classic_cnn_pickled_before_the_mixstyle_option_still_runs() -> None:
    """MLflow's pytorch flavour pickles whole nets: registered models older than the option
    have no `mixstyle` attribute and must still load, run and keep their answers."""
    import pickle

    torch.manual_seed(0)
    net = ClassicCNN(1, 24, 0.2, 0.3, 28).eval()
    x = torch.rand(3, 1, 28, 28)
    expected = net(x)
    del net.mixstyle  # what a net pickled before the option looks like
    old = pickle.loads(pickle.dumps(net))  # noqa: S301 - bytes made here
    torch.testing.assert_close(old(x), expected)
    assert old.mixstyle is None
    with_mix = pickle.loads(pickle.dumps(ClassicCNN(1, 24, 0.2, 0.3, 28, mixstyle=0.5)))  # noqa: S301
    assert isinstance(with_mix.mixstyle, MixStyle), "a net with the option keeps it"
