# Two commands do everything on a fresh machine:
#   make demo   set up .venv and run the default scenario
#   make test   set up .venv and run lint, format check and the whole test suite
.PHONY: setup demo test lint format clean

setup:
	@bash tools/bootstrap.sh

demo: setup
	.venv/bin/biohybrid run demo

test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	bash tools/install-browser.sh
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:
	rm -rf .venv build *.egg-info
