# Custos - build, test, benchmark, demo.  `make help` lists the targets.

BUILD    ?= build
CC       ?= gcc
SAN      ?=
PYTHON   ?= /usr/bin/python3
FUZZ_SECONDS ?= 15

WARN     = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes
HARDEN   = -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(HARDEN) -pthread -MMD -MP -Idaemon -I$(BUILD)/gen -I/usr/include/postgresql
LDFLAGS_H = -pie -Wl,-z,relro,-z,now -pthread
LIBS     = -levent_openssl -levent -lssl -lcrypto -lz -ldeflate -ljansson -lyaml -lpq -laudit -lcap-ng -lsystemd -lpg_query

ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all -U_FORTIFY_SOURCE
LDFLAGS_H  += -fsanitize=$(SAN)
endif

MAINS    = daemon/custosd.c daemon/custosctl.c
LIB_SRC  = $(filter-out $(MAINS),$(wildcard daemon/*.c))
LIB_OBJ  = $(LIB_SRC:daemon/%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC = $(wildcard tests/tools/*.c)
TOOL_BIN = $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
PROGS    = $(BUILD)/custosd $(BUILD)/custosctl $(BUILD)/custos-bench

.PHONY: install all deps check unit integration fuzz asan ubsan bench demo format format-check clean help tools

all: $(PROGS)

help:
	@echo "make demo     install Debian packages, build, run the demo"
	@echo "make check    install Debian packages, build, run unit, integration and fuzz tests"
	@echo "make          build $(PROGS)"
	@echo "make bench    benchmarks (figures as ratios to references measured in the same run)"
	@echo "make asan | make ubsan   the test suite under AddressSanitizer / UBSan"
	@echo "make format-check        clang-format check"
	@echo "make install  [PREFIX=/usr] [DESTDIR=...]: binaries, systemd unit, sysusers/tmpfiles, config"

deps:
	@sh scripts/deps.sh

# PREFIX (default /usr) and DESTDIR as usual; see scripts/install.sh.
install: all
	PREFIX="$(or $(PREFIX),/usr)" DESTDIR="$(DESTDIR)" sh scripts/install.sh $(BUILD)

$(BUILD)/obj/%.o: daemon/%.c | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/obj/main-%.o: daemon/%.c | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# schemas/custos*.sql are compiled in, as C strings (keystore.c).
SQL_GEN = $(BUILD)/gen/custos_sql.h $(BUILD)/gen/custos_2_requests_sql.h $(BUILD)/gen/custos_3_subject_index_sql.h \
           $(BUILD)/gen/custos_4_attempts_sql.h
SQL_TO_C = sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@.tmp && mv $@.tmp $@
$(BUILD)/gen/custos_sql.h: schemas/custos.sql | $(BUILD)/gen
	$(SQL_TO_C)
$(BUILD)/gen/custos_2_requests_sql.h: schemas/custos-2-requests.sql | $(BUILD)/gen
	$(SQL_TO_C)
$(BUILD)/gen/custos_3_subject_index_sql.h: schemas/custos-3-subject-index.sql | $(BUILD)/gen
	$(SQL_TO_C)
$(BUILD)/gen/custos_4_attempts_sql.h: schemas/custos-4-attempts.sql | $(BUILD)/gen
	$(SQL_TO_C)

$(BUILD)/obj/keystore.o: $(SQL_GEN)

$(BUILD)/libcustos.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/custosd: $(BUILD)/obj/custosd.o $(BUILD)/libcustos.a
	$(CC) $(LDFLAGS_H) -o $@ $^ $(LIBS)

$(BUILD)/custosctl: $(BUILD)/obj/custosctl.o $(BUILD)/libcustos.a
	$(CC) $(LDFLAGS_H) -o $@ $^ $(LIBS)

$(BUILD)/custos-bench: tests/bench/custos_bench.c $(BUILD)/libcustos.a | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_H) -o $@ $^ $(LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libcustos.a | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS_H) $(UNIT_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# the log's tests step the wall clock (test_clock_stepped_back)
$(BUILD)/tests/test_auditlog: UNIT_LDFLAGS = -Wl,--wrap=clock_gettime

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libcustos.a | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS_H) -o $@ $^ $(LIBS)

# libFuzzer targets include the sources they test (wireguard-tools' way) and
# link an archive of the other library sources, built once with the same
# instrumentation: the linker takes no member whose symbols the target
# already defines. The command modules stay out.
FUZZ_LIB = $(filter-out daemon/ctl_%.c,$(LIB_SRC))
FUZZ_OBJ = $(FUZZ_LIB:daemon/%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_CFLAGS = -std=gnu11 -g -O1 -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Idaemon -I$(BUILD)/gen -I/usr/include/postgresql
$(BUILD)/fuzz/obj/%.o: daemon/%.c $(SQL_GEN) | $(BUILD)/fuzz/obj
	clang $(FUZZ_CFLAGS) -MMD -MP -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(BUILD)/fuzz/libfuzzlib.a: $(FUZZ_OBJ)
	ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz_common.h tests/fuzz/fuzz_pgproto_stream.h $(BUILD)/fuzz/libfuzzlib.a | $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(BUILD)/fuzz/libfuzzlib.a $(LIBS) -pthread

$(BUILD)/obj $(BUILD)/tests $(BUILD)/fuzz $(BUILD)/gen $(BUILD)/fuzz/obj:
	mkdir -p $@

tools: $(TOOL_BIN) tests/integration/clients/node_modules/pg

# node-postgres for the proxy's Node.js client test (npm: its only use)
tests/integration/clients/node_modules/pg: tests/integration/clients/package.json tests/integration/clients/package-lock.json
	cd tests/integration/clients && npm ci --no-audit --no-fund --silent
	touch $@

# Leaks of libraries' own (tests/fuzz/lsan.supp) are not the tests' (make asan).
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do LSAN_OPTIONS=suppressions=$(abspath tests/fuzz/lsan.supp) $$t; done

# A test that hangs fails after TEST_TIMEOUT seconds instead of stalling the run.
TEST_TIMEOUT ?= 300
integration: all tools
	CUSTOS_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q --timeout $(TEST_TIMEOUT) --durations 5 tests/integration

fuzz: $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $(BUILD)/fuzz

check: deps
	$(MAKE) all tools
	$(MAKE) unit
	$(MAKE) fuzz
	$(MAKE) integration

asan: deps
	$(MAKE) BUILD=build/asan SAN=address all tools unit integration

ubsan: deps
	$(MAKE) BUILD=build/ubsan SAN=undefined all tools unit integration

bench: deps all tools
	sh tests/bench/run.sh $(BUILD)

demo: deps all tools
	sh scripts/demo.sh $(BUILD)

format:
	clang-format -i daemon/*.c daemon/*.h tests/*/*.c

format-check:
	clang-format --dry-run -Werror daemon/*.c daemon/*.h tests/*/*.c

clean:
	rm -rf build

-include $(wildcard $(BUILD)/obj/*.d)
-include $(wildcard $(BUILD)/fuzz/obj/*.d)
