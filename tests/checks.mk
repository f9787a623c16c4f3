# make lint and make test-leaks, included by the Makefile (tests/lint/lint.sh,
# tests/leaks.sh). Both install their tools where they are missing.
.PHONY: lint test-leaks

lint:
	@scripts/install-deps.sh --lint
	@tests/lint/lint.sh

# The normal build, since valgrind and ASan do not mix.
test-leaks:
	@scripts/install-deps.sh --leaks
	@$(MAKE) -s all SANITIZE=0
	@tests/leaks.sh
