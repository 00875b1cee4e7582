"""The README's Python examples, run as they stand (PyTorch's where PyTorch is installed)."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def python_examples():
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_has_its_examples():
    assert len(python_examples()) == 3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_readme_example_runs(index):
    example = python_examples()[index]
    if "import torch" in example:
        pytest.importorskip("torch", reason="PyTorch is not installed (Debian: python3-torch)")
    exec(compile(example, f"README.md example {index + 1}", "exec"), {})
