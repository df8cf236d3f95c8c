"""Text rendering of result dicts, without click."""

from edge.render import table


def test_table_aligns_numbers_right_and_text_left():
    text = table(
        [
            ("model", "board", "ms", "size"),
            ("mnv2", "Raspberry Pi 5", "2.6", "3.5M"),
            ("vgg16", "Pi", "296", "138.4M"),
            ("x", "failed", "", "-"),
        ]
    )
    assert text.splitlines() == [
        "model  board            ms    size",
        "mnv2   Raspberry Pi 5  2.6    3.5M",
        "vgg16  Pi              296  138.4M",
        "x      failed                    -",
    ]


def test_a_sender_s_set_aside_items_and_moved_file_are_said():
    from edge.render import _aside

    assert _aside({"set_aside": 0, "moved_aside": None}) == ""
    assert _aside({"set_aside": 3, "moved_aside": "/var/lib/edge/outbox.db.damaged-1"}) == (
        "; set aside 3 (another device's or kind's); damaged file moved aside to /var/lib/edge/outbox.db.damaged-1"
    )
