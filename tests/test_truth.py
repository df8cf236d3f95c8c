"""Ground truth over a session: the schedule a file gives, and what number keys set during --preview."""

from edge.truth import KeyedTruth, whole_session


def test_keys_replace_the_base_truth_from_the_first_press():
    truth = KeyedTruth(whole_session("1", ["0", "1", "7"]))
    assert truth.at(0, 0.0) == 1
    truth.set(2)
    assert truth.at(1, 0.1) == 2
    truth.set(None)  # "0": nothing in view to evaluate
    assert truth.at(2, 0.2) is None
    assert KeyedTruth(None).at(0, 0.0) is None
