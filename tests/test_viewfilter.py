"""The view filter contract shared by report.html's links and `genval view`."""

from urllib.parse import parse_qs

import pytest

from genval.errors import GenvalError
from genval.viewfilter import filter_string, parse_filter, view_command, view_url


def test_round_trip_keeps_every_term_and_order_of_keys():
    text = filter_string(q="a&b=c", slice="critical=true", metric="rouge_l", max=0.3, pair="student~teacher")
    assert text.index("slice=") < text.index("pair=") < text.index("metric=") < text.index("max=") < text.index("q=")
    assert parse_filter(text) == {"slice": "critical=true", "pair": "student~teacher", "metric": "rouge_l",
                                  "max": "0.3", "q": "a&b=c"}
    assert parse_qs(text)["q"] == ["a&b=c"]  # what a browser's URLSearchParams reads as well


def test_empty_terms_are_left_out_and_url_and_command():
    assert filter_string(slice=None, q="") == ""
    assert view_url() == "http://127.0.0.1:8765/"
    assert view_url("slice=a%3Db", port=9000) == "http://127.0.0.1:9000/?slice=a%3Db"
    assert view_command("runs/demo", "flag=failed") == 'genval view runs/demo --filter "flag=failed"'


@pytest.mark.parametrize("text, named", [
    ("colour=red", "'colour'"), ("slice=a=b&slice=c=d", "'slice' given twice"), ("min=low", "min='low'"),
    ("flag=odd", "flag='odd'"), ("order=up", "order='up'"),
])
def test_bad_filters_are_refused_naming_the_term(text, named):
    with pytest.raises(GenvalError, match=named):
        parse_filter(text)
    with pytest.raises(GenvalError):
        filter_string(colour="red")
