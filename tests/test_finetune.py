import pytest

from edge.converter.finetune import STEPS, choose_fine_tuning


@pytest.mark.parametrize(
    "images,probe,share",
    [
        (10, None, 0.15),
        (19, 0.8, 0.15),
        (20, 0.8, 0.3),
        (99, None, 0.3),
        (100, 0.8, 0.5),
        (500, 0.8, 1.0),
        (10, 0.99, 0.0),  # too few to fine-tune and nothing to gain: the head alone
        (50, 0.96, 0.15),
        (50, 0.5, 0.5),
        (10, 0.3, 0.3),
        (2000, 0.2, 1.0),  # the probe moves one step, within the table
    ],
)
def test_images_per_class_choose_a_step_the_probe_moves(images, probe, share):
    chosen = choose_fine_tuning(images, probe, 150, 1e-3)
    step = next(s for s in STEPS if s.share == share)
    assert (chosen.layers, chosen.of, chosen.lr) == (round(share * 150), 150, pytest.approx(1e-3 / step.lr_divisor))
    assert f"{images} training images" in chosen.why and f"{share:.0%}" in chosen.why


def test_more_unfrozen_means_a_lower_learning_rate():
    assert [s.share for s in STEPS] == sorted(s.share for s in STEPS)
    assert [s.lr_divisor for s in STEPS] == sorted(s.lr_divisor for s in STEPS)
