# The two commands of the README: `make demo` and `make test`. Both set up what they need.
.PHONY: demo test setup bench clean-demo

demo:
	scripts/demo.sh

test:
	scripts/test.sh

setup:
	scripts/bootstrap.sh --browser

bench:
	scripts/bootstrap.sh
	.venv/bin/python benchmarks/run_all.py

clean-demo:
	rm -rf demo
