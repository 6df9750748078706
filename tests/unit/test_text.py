from chatkeep import text


def test_given_accents_and_case_when_normalised_then_plain_lowercase():
    assert text.normalise("Élan CAFÉ Straße") == "elan cafe strasse"


def test_given_text_when_tokenised_then_distinct_words_in_order_unicode_aware():
    expected = ["hello", "world", "naive", "resume", "42", "日本語"]
    assert text.words("Hello, hello WORLD! naïve-résumé 42 日本語") == expected


def test_given_underscores_and_long_words_then_split_and_truncated():
    assert text.words("snake_case") == ["snake", "case"]
    assert text.words("x" * 100) == ["x" * text.MAX_WORD_LENGTH]


def test_given_nothing_then_no_words():
    assert text.words(None) == [] and text.words("  ,.; ") == []
