"""docs/ ships inside the wheel as harness.docs (sources.md: the source of every published
figure gwbench uses); see pyproject.toml."""
