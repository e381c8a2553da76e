"""The raw-text MLflow model's input checks: what the server answers with 400 instead of scoring."""

import pandas as pd
import pytest

from imdb_rnn.text_model import MAX_REVIEW_CHARS, review_texts


def test_reviews_pass_through_in_order():
    assert review_texts(pd.DataFrame({"text": ["Great film.", "Dull."]})) == ["Great film.", "Dull."]


@pytest.mark.parametrize(
    "texts, message",
    [
        ([], "no reviews"),
        (["fine", 5], "review 2: 'text' must be a string, got int"),
        ([None], "review 1: 'text' must be a string, got NoneType"),
        (["  "], "review 1: 'text' is empty"),
        (["a" * (MAX_REVIEW_CHARS + 1)], f"{MAX_REVIEW_CHARS + 1} characters; at most {MAX_REVIEW_CHARS}"),
    ],
    ids=["none", "number", "null", "blank", "too-long"],
)
def test_bad_reviews_are_refused_with_a_400_naming_the_review(texts, message):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as err:
        review_texts(pd.DataFrame({"text": pd.Series(texts, dtype=object)}))
    assert message in err.value.message and err.value.get_http_status_code() == 400
