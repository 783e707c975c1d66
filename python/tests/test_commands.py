"""The two commands of the README (install and run the main job; install and run every test)
are the ones CI and the documentation's getting-started page use: `.ci/run` runs exactly the
README's test command, and docs/getting_started.md shows both commands as the README does."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shell_blocks(path):
    """The ```sh blocks of a Markdown file, each as one stripped string."""
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", path.read_text(), re.S)]


def two_commands(path):
    """(main job, test command): the first two shell blocks of `path`, each one line."""
    main, tests = shell_blocks(path)[:2]
    assert "\n" not in main and "\n" not in tests, f"{path.name}: a command spans lines"
    return main, tests


def test_ci_runs_exactly_the_readme_test_command():
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))]
    assert ci == [two_commands(ROOT / "README.md")[1]]


def test_getting_started_shows_the_readme_commands():
    assert two_commands(ROOT / "docs" / "getting_started.md") == two_commands(ROOT / "README.md")


def test_the_commands_do_what_the_readme_says():
    main, tests = two_commands(ROOT / "README.md")
    assert main.endswith("python -m spikeloc train")
    for step in ("pip install '.[test]'", "swift test &&", "--sanitize=address",
                 "pytest -q python/tests", "sphinx-build -W"):
        assert step in tests, step
