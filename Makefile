# coin-pricer: GNU make. `make` builds every stage into bin/; `make test` runs the
# suite; `make test SANITIZE=1` builds with ASan+UBSan into bin-san/ and runs it there.

STAGES   := filter-junk normalize-usd valuate claim-job store ebay-fetch
DB_STAGES := claim-job store
PREFIX   ?= /usr/local
DESTDIR  ?=

CC       ?= cc
# -Werror only in the project's own builds: a packager who brings CFLAGS of their own
# (environment or command line) gets the warnings without the build failing on them.
# WERROR= or WERROR=-Werror says it either way.
ifeq ($(origin CFLAGS),default)
WERROR   ?= -Werror
endif
ifeq ($(origin CFLAGS),undefined)
WERROR   ?= -Werror
endif
WERROR   ?=
CFLAGS   ?= -O2 -g
WARNINGS := -std=gnu11 -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wformat=2
PG_INCLUDE := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
CPPFLAGS += -Istages/lib -I$(PG_INCLUDE) -D_GNU_SOURCE
LDLIBS   := -lcjson -lm

ifeq ($(SANITIZE),1)
BIN      := bin-san
OBJ      := build/san
CFLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
else
BIN      := bin
OBJ      := build/normal
endif

LIB_SRC  := $(wildcard stages/lib/*.c)
LIB_OBJ  := $(LIB_SRC:stages/lib/%.c=$(OBJ)/lib/%.o)
PROGRAMS := $(STAGES:%=$(BIN)/%)

.SECONDARY:
.PHONY: all test bench quality install uninstall clean deps demo format
all: $(PROGRAMS)

$(BIN)/%: $(OBJ)/%.o $(OBJ)/libcoin.a | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Only the stages that talk to PostgreSQL link libpq; only the collector, libcurl.
$(DB_STAGES:%=$(BIN)/%): LDLIBS += -lpq
$(BIN)/ebay-fetch: LDLIBS += -lcurl

# The collector is stages/ebay-fetch.c and its parts in stages/ebay/, before the library.
EBAY_OBJ := $(patsubst stages/ebay/%.c,$(OBJ)/ebay/%.o,$(wildcard stages/ebay/*.c))
$(BIN)/ebay-fetch: $(OBJ)/ebay-fetch.o $(EBAY_OBJ) $(OBJ)/libcoin.a | $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(EBAY_OBJ): | $(OBJ)/ebay

$(OBJ)/libcoin.a: $(LIB_OBJ)
	$(AR) rcs $@ $^

$(OBJ)/%.o: stages/%.c | $(OBJ)/lib
	$(CC) $(CPPFLAGS) $(WARNINGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(OBJ)/lib $(OBJ)/ebay $(BIN):
	mkdir -p $@

# Installs the Debian packages the build and the tests need, where any is missing.
deps:
	@scripts/install-deps.sh

test:
	@SANITIZE=$(SANITIZE) scripts/test.sh

bench: all
	@BIN=$(CURDIR)/$(BIN) scripts/bench.sh

# Pricing error on synthetic markets with a known truth (scripts/quality.sh).
quality: all
	@BIN=$(CURDIR)/$(BIN) scripts/quality.sh

demo:
	@scripts/demo.sh

# Stages go to a folder of their own, libexec/coin-pricer, where names such as `store` and
# `valuate` cannot clash with other programs; coin-pricer finds them there, and runs the
# worker (pipeline.sh, installed beside them) as `coin-pricer worker`. The migrations go
# to share/coin-pricer/sql, with migrate.sh beside them (its schemas/sql is a link). The
# manuals, share/man/man1/coin-pricer*.1, are made from the programs' --help (scripts/man.sh).
LIBEXEC_DIR := $(PREFIX)/libexec/coin-pricer
SHARE_DIR   := $(PREFIX)/share/coin-pricer
install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBEXEC_DIR) $(DESTDIR)$(SHARE_DIR)/sql \
		$(DESTDIR)$(SHARE_DIR)/scripts $(DESTDIR)$(SHARE_DIR)/schemas \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(PROGRAMS) pipeline.sh $(DESTDIR)$(LIBEXEC_DIR)/
	install -m 0644 scripts/db-url.sh $(DESTDIR)$(LIBEXEC_DIR)/
	install -m 0644 scripts/db-url.sh $(DESTDIR)$(SHARE_DIR)/scripts/
	install -m 0755 scripts/coin-pricer $(DESTDIR)$(PREFIX)/bin/coin-pricer
	install -m 0644 schemas/sql/*.sql $(DESTDIR)$(SHARE_DIR)/sql/
	install -m 0755 scripts/migrate.sh $(DESTDIR)$(SHARE_DIR)/scripts/migrate.sh
	ln -sfn ../sql $(DESTDIR)$(SHARE_DIR)/schemas/sql
	install -m 0644 scripts/completion.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/coin-pricer
	scripts/man.sh $(DESTDIR)$(PREFIX)/share/man/man1 $(BIN)

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/coin-pricer \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/coin-pricer \
		$(DESTDIR)$(PREFIX)/share/man/man1/coin-pricer.1 $(DESTDIR)$(PREFIX)/share/man/man1/coin-pricer-*.1
	rm -rf $(DESTDIR)$(LIBEXEC_DIR) $(DESTDIR)$(SHARE_DIR)

format:
	clang-format -i stages/*.c stages/lib/*.[ch] stages/ebay/*.[ch] tests/fuzz/*.c

clean:
	rm -rf build bin bin-san

-include $(wildcard $(OBJ)/*.d $(OBJ)/lib/*.d $(OBJ)/ebay/*.d)

# make fuzz, fuzz-regress: libFuzzer targets; make lint, test-leaks (valgrind).
include tests/fuzz/fuzz.mk
include tests/checks.mk
