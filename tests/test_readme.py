"""The README's two commands are what users and CI run."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```bash"):
            current = []
        elif line.startswith("```") and current is not None:
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_ci_runs_the_readme_test_command():
    readme_blocks = _bash_blocks((ROOT / "README.md").read_text())
    run_block, test_block = readme_blocks[0], readme_blocks[1]
    assert "snakemake -c2" in run_block and "--report" in run_block
    assert "pytest" in test_block
    ci_lines = [l for l in (ROOT / ".ci/run").read_text().splitlines()
                if l.strip() and not l.startswith(("#", "set ", "cd "))]
    assert ci_lines == [test_block.strip()]
