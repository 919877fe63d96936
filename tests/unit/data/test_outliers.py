import pytest
import torch

from fingerspell.data.outliers import hand_free, shuffle_tiles, uniform_loss


def test_shuffled_tiles_keep_every_pixel_but_not_the_layout() -> None:
    x = torch.rand(8, 1, 28, 28)
    out = shuffle_tiles(x, grid=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # same pixels per image, in another order
    assert torch.equal(out.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    assert (out != x).flatten(1).any(1).all()
    # each 7x7 tile of the output is one tile of the input, moved whole
    tiles_in = {
        tuple(x[0, 0, r : r + 7, c : c + 7].flatten().tolist())
        for r in range(0, 28, 7)
        for c in range(0, 28, 7)
    }
    tiles_out = {
        tuple(out[0, 0, r : r + 7, c : c + 7].flatten().tolist())
        for r in range(0, 28, 7)
        for c in range(0, 28, 7)
    }
    assert tiles_out == tiles_in


def test_shuffles_are_seeded_and_differ_between_samples() -> None:
    x = torch.rand(1, 1, 28, 28).expand(4, 1, 28, 28).clone()
    a = shuffle_tiles(x, generator=torch.Generator().manual_seed(3))
    b = shuffle_tiles(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # one permutation per sample, not per batch


def test_a_grid_that_does_not_divide_the_image_is_refused() -> None:
    with pytest.raises(ValueError, match="5x5 grid"):
        shuffle_tiles(torch.rand(2, 1, 28, 28), grid=5)


def test_hand_free_batch_is_half_scenes_half_shuffled_hands() -> None:
    x = torch.rand(6, 1, 28, 28)
    out = hand_free(x, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.min() >= 0
    assert out.max() <= 1
    # the scenes owe nothing to the input: a different batch gives the same scenes under one seed
    other = hand_free(torch.zeros(6, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:3], other[:3])
    # the rest are the input's own pixels, reordered
    assert torch.equal(out[3:].flatten(1).sort(1).values, x[3:].flatten(1).sort(1).values)


def test_uniform_loss_is_zero_only_for_uniform_predictions() -> None:
    assert uniform_loss(torch.zeros(4, 24)).abs() < 1e-6
    assert uniform_loss(torch.full((4, 24), 7.0)).abs() < 1e-5  # any constant logit row is uniform
    confident = torch.zeros(4, 24)
    confident[:, 3] = 10.0
    assert uniform_loss(confident) > 5
    # gradient descent on it flattens the prediction
    logits = torch.randn(4, 24, requires_grad=True)
    uniform_loss(logits).backward()
    assert torch.allclose(logits.grad.sum(1), torch.zeros(4), atol=1e-6)
    stepped = logits.detach() - 5 * logits.grad
    assert stepped.softmax(1).max() < logits.detach().softmax(1).max()
