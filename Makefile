# The two commands of a fresh machine (README): `make run` and `make test`.
PY := .venv/bin/python
ARGS ?=

.PHONY: setup setup-test run test bench clean

setup:
	scripts/setup.sh

setup-test:
	GWBENCH_EXTRAS=test scripts/setup.sh

# Set up, then measure the quick suite on whatever hardware is present (GPU if any,
# else CPU), write results/<run-id>/ and print the summary and the 1 GW / 10 GW projection.
run: setup
	.venv/bin/gwbench run $(ARGS)

# Set up with the test extras, then run the test suite (GPU tests skip without a GPU).
test: setup-test
	$(PY) -m pytest -q $(ARGS)

# Side-by-side benchmarks (pytest-benchmark): harness vs torch.utils.benchmark, sampler cost.
bench: setup-test
	$(PY) -m pytest -q tests/bench_*.py --benchmark-enable $(ARGS)

clean:
	rm -rf .venv build *.egg-info .pytest_cache
