"""The README's gati.toml example is a valid gati.toml: every section and key in it is one gati reads."""

from pathlib import Path

from runtime.http.project import parse_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_gati_toml_parses():
    text = README.read_text()
    start = text.index("```toml", text.index("## gati.toml")) + len("```toml")
    example = text[start : text.index("```", start)]
    settings = parse_settings(example.encode(), README)
    assert settings.playground.token_secret == "playground_token"
    assert settings.audit.key_secret == ""
