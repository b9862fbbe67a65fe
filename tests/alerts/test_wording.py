"""Figures in alerts read one way wherever an operator sees them: the command, the message, the admin."""

import pytest

from alerts.alert_message import number


@pytest.mark.parametrize(
    ("value", "shown"),
    [(88864, "88,864"), (34207.48, "34,207"), (1204.0, "1,204"), (0.0523, "0.0523"), (2.5, "2.5"), (None, "-")],
)
def test_a_figure_has_thousands_separators_and_never_an_exponent(value, shown):
    assert number(value) == shown
