"""Shell completion: the scripts click generates, and completions of commands and corpora."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from corpuskit.cli import cli


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "_CORPUSKIT_COMPLETE=bash_complete"),
        ("zsh", "#compdef corpuskit"),
        ("fish", "_CORPUSKIT_COMPLETE=fish_complete"),
    ],
)
def test_completion_scripts(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.output


def test_unknown_shell_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["completion", "tcsh"]).exit_code == 2


def _complete(words: str) -> list[str]:
    """What bash would offer for the last word of ``words`` (click's completion protocol)."""
    env = {"_CORPUSKIT_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    result = CliRunner().invoke(cli, [], env=env, prog_name="corpuskit")
    assert result.exit_code == 0, result.output
    return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]


def test_commands_and_corpus_names_complete(tiny_corpus: str, tmp_path: Path) -> None:
    assert {"report", "doctor", "completion"} <= set(_complete("corpuskit "))
    assert _complete("corpuskit doc") == ["doctor"]
    assert "tiny" in _complete("corpuskit build ti")
    assert "python-stdlib" in _complete("corpuskit report py")
    assert "--json" in _complete("corpuskit build tiny --js")
