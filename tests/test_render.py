"""What a person sees: the table rendered on a fixed, colourless console."""

import io
from decimal import Decimal

from rich.console import Console

from common.cars import Car
from common.consolidate import RoundResult
from common.protocol import Reply
from common.render import BEST_MARK, round_view


def render(*replies: Reply, expected: int = 2) -> str:
    console = Console(width=120, color_system=None, file=io.StringIO())
    result = RoundResult.build(
        number=1,
        round_id="r-1",
        expected=expected,
        elapsed_ms=3.0,
        replies=list(replies),
    )
    console.print(round_view(result, timeout_s=60, top=None))
    return console.file.getvalue()


def test_names_that_look_like_markup_are_shown_as_written():
    text = render(
        Reply(
            "r-1",
            "Locadora [/b]",
            "[bold]Centro",
            "http://a",
            [Car(1, 2024, "[red]BMW", "M4", Decimal("10.00"))],
        ),
        expected=1,
    )

    assert "Locadora [/b]" in text
    assert "[bold]Centro" in text
    assert "[red]BMW" in text


def test_exactly_one_row_is_marked_best_even_among_equal_offers():
    same = [Car(i, 2024, "BMW", "M4", Decimal("10.00")) for i in range(1, 4)]
    text = render(Reply("r-1", "A", "Centro", "http://a", same), expected=1)

    assert text.count(BEST_MARK) == 1


def test_missing_rentals_are_stated():
    text = render(Reply("r-1", "A", "Centro", "http://a", []), expected=3)

    assert "No car is available." in text
    assert "1 of 3 rentals answered, 0 cars available" in text
    assert "2 expected rental(s) did not answer within 60 s" in text
