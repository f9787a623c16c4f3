# libFuzzer targets, included by the Makefile. A target is tests/fuzz/NAME.c (it
# defines LLVMFuzzerTestOneInput) plus one $(call fuzz_target,...) line below:
#   $(eval $(call fuzz_target,NAME,STAGE,LDLIBS,SEEDS))
# STAGE: a stage whose stages/STAGE.c is linked with main renamed stage_main (see
# harness.h), or empty; LDLIBS: what it links beyond cJSON; SEEDS: files, each one seed.
# `make fuzz [FUZZ_TARGETS=...] [FUZZ_SECONDS=N]` runs each target in turn, one at a time,
# seeded from the test data; a crash lands in tests/fuzz/regressions/NAME/, kept there
# as a regression case that `make fuzz-regress` (run by the test suite) replays.

FUZZ_CC      ?= $(shell command -v clang-14 || command -v clang)
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
		-fno-sanitize-recover=all $(WARNINGS) -Wno-unknown-warning-option
FUZZ_LINK    := -fsanitize=fuzzer,address,undefined
FUZZ_ALL     :=

define fuzz_target
FUZZ_ALL += $(1)
$(FUZZ_DIR)/$(1): $(FUZZ_DIR)/t-$(1).o $(if $(2),$(FUZZ_DIR)/stage-$(2).o) $(FUZZ_DIR)/harness.o $(FUZZ_DIR)/libcoin.a
	$$(FUZZ_CC) $(FUZZ_LINK) -o $$@ $$^ -lcjson -lm $(3)
fuzz-seeds-$(1) := $(4)
endef

$(eval $(call fuzz_target,ndjson,,,$(wildcard tests/cases/*/*.in tests/data/*.ndjson)))
$(eval $(call fuzz_target,money,,,$(wildcard tests/fuzz/seeds/money/*)))
$(eval $(call fuzz_target,rules,,,$(wildcard tests/cases/*/*.ndjson)))
$(eval $(call fuzz_target,rates,normalize-usd,,$(wildcard tests/cases/normalize-usd/*.csv)))
$(eval $(call fuzz_target,filter-junk,filter-junk,,$(wildcard tests/cases/filter-junk/*.in)))
$(eval $(call fuzz_target,title,,,$(wildcard tests/fuzz/seeds/title/*)))
$(eval $(call fuzz_target,log,,,$(wildcard tests/fuzz/seeds/log/*)))
$(eval $(call fuzz_target,normalize-usd,normalize-usd,,$(wildcard tests/cases/normalize-usd/*.in)))
$(eval $(call fuzz_target,valuate,valuate,,$(wildcard tests/cases/valuate/*.in)))
$(eval $(call fuzz_target,ebay,,-lcurl,$(wildcard tests/data/ebay/*.json)))

FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_LIB_OBJ := $(LIB_SRC:stages/lib/%.c=$(FUZZ_DIR)/lib/%.o)

$(FUZZ_DIR)/lib/%.o: stages/lib/%.c | $(FUZZ_DIR)/lib
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/libcoin.a: $(FUZZ_LIB_OBJ)
	$(AR) rcs $@ $^
$(FUZZ_DIR)/t-%.o: tests/fuzz/%.c | $(FUZZ_DIR)/lib
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/harness.o: tests/fuzz/harness.c | $(FUZZ_DIR)/lib
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -DFUZZ_ROOT='"$(CURDIR)"' -MMD -MP -c -o $@ $<
# A stage with its main renamed, so that a target can run it in-process.
$(FUZZ_DIR)/stage-%.o: stages/%.c | $(FUZZ_DIR)/lib
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -Dmain=stage_main -MMD -MP -c -o $@ $<
$(FUZZ_DIR)/lib:
	mkdir -p $@

.PHONY: fuzz fuzz-build fuzz-regress fuzz-deps
fuzz-deps:
	@scripts/install-deps.sh --fuzz

fuzz-build: fuzz-deps
	@$(MAKE) -s $(FUZZ_ALL:%=$(FUZZ_DIR)/%)

# One target at a time (the machine is shared): seeds from the test data and the kept
# regressions; new inputs go to build/fuzz/corpus/NAME, crashes to the regressions.
fuzz: fuzz-build
	@$(foreach t,$(FUZZ_TARGETS),mkdir -p $(FUZZ_DIR)/corpus/$(t) tests/fuzz/regressions/$(t) && \
		tests/fuzz/seed.sh $(t) $(FUZZ_DIR)/corpus/$(t) $(fuzz-seeds-$(t)) &&) true
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -close_fd_mask=2 -print_final_stats=1 \
			-timeout=10 -rss_limit_mb=2048 -max_len=8192 \
			-artifact_prefix=tests/fuzz/regressions/$$t/ \
			$(FUZZ_DIR)/corpus/$$t tests/fuzz/regressions/$$t 2>&1 | \
			tee $(FUZZ_DIR)/$$t.log | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' ; \
		grep -q 'Done [0-9]* runs' $(FUZZ_DIR)/$$t.log || { echo "fuzz $$t: failed, see $(FUZZ_DIR)/$$t.log"; exit 1; }; \
	done

# Every kept input of every target, run once: what failed once never fails again.
fuzz-regress: fuzz-build
	@set -e; for t in $(FUZZ_ALL); do \
		files=$$(find tests/fuzz/regressions/$$t -type f ! -name .keep 2>/dev/null | sort); \
		[ -z "$$files" ] && continue; \
		$(FUZZ_DIR)/$$t $$files >$(FUZZ_DIR)/$$t.regress.log 2>&1 || \
			{ echo "fuzz-regress $$t: failed, see $(FUZZ_DIR)/$$t.regress.log"; tail -n 30 $(FUZZ_DIR)/$$t.regress.log; exit 1; }; \
		echo "fuzz-regress $$t: $$(echo $$files | wc -w) inputs ok"; \
	done

-include $(wildcard $(FUZZ_DIR)/*.d $(FUZZ_DIR)/lib/*.d)
