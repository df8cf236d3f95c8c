"""Text rendering of result dicts, without click."""
from edge.render import table


def test_table_aligns_numbers_right_and_text_left():
    text = table([("model", "board", "ms", "size"), ("mnv2", "Raspberry Pi 5", "2.6", "3.5M"),
                  ("vgg16", "Pi", "296", "138.4M"), ("x", "failed", "", "-")])
    assert text.splitlines() == [
        "model  board            ms    size",
        "mnv2   Raspberry Pi 5  2.6    3.5M",
        "vgg16  Pi              296  138.4M",
        "x      failed                    -",
    ]
