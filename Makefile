# Postfach build.  `make` builds release binaries into build/release/;
# `make test` builds with ASan/UBSan into build/asan/ and runs every suite.
# Sources are found by wildcard: a new lib/<area>/<module>.c, cmd/<prog>/,
# tests/unit/test_<module>.c or tests/e2e/test_<name>.c needs no edit here.

MODE    ?= release
BUILD   := build/$(MODE)
CC      ?= cc

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wvla
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -pthread -Iinclude -Ilib $(WARN) -MMD -MP \
           $(shell pkg-config --cflags libzmq jansson libmicrohttpd 2>/dev/null) -I/usr/include/postgresql

ifeq ($(MODE),asan)
CFLAGS_MODE := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS_MODE := -fsanitize=address,undefined
else ifeq ($(MODE),fuzz)
CC := clang
CFLAGS_MODE := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -DPF_FUZZING
LDFLAGS_MODE := -fsanitize=fuzzer,address,undefined
else
CFLAGS_MODE := -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDFLAGS_MODE := -Wl,-z,relro,-z,now
endif

CFLAGS  += $(CFLAGS_COMMON) $(CFLAGS_MODE)
LDFLAGS += $(LDFLAGS_MODE) -pthread
LIBS    := -lzmq -lpq -lssl -lcrypto -luuid -ljansson -lmicrohttpd -lm

LIB_SRCS  := $(sort $(wildcard lib/*/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CORE_LIB  := $(BUILD)/libpfcore.a

PROGS     := $(notdir $(wildcard cmd/*))
PROG_BINS := $(PROGS:%=$(BUILD)/bin/%)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
E2E_SUPPORT_SRCS := $(filter-out tests/e2e/test_%.c,$(wildcard tests/e2e/*.c))
E2E_SUPPORT_OBJS := $(E2E_SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
E2E_SRCS  := $(sort $(wildcard tests/e2e/test_*.c))
E2E_BINS  := $(E2E_SRCS:tests/e2e/%.c=$(BUILD)/tests/e2e/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/tests/fuzz/%)

.SECONDARY:

.PHONY: FORCE all programs tests deps run test unit e2e browser deploy install interop check-layout fuzz bench soak clean format

all: programs

programs: $(PROG_BINS)

tests: $(UNIT_BINS) $(E2E_BINS) $(PROG_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(CORE_LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define PROG_template
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cmd/$(1)/*.c)) $(CORE_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(CORE_LIB) $$(LIBS)
endef
$(foreach p,$(PROGS),$(eval $(call PROG_template,$(p))))

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(CORE_LIB) $(LIBS) -lcmocka

$(BUILD)/tests/e2e/%: $(BUILD)/obj/tests/e2e/%.o $(E2E_SUPPORT_OBJS) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(E2E_SUPPORT_OBJS) $(CORE_LIB) $(LIBS) -lcmocka

# A fuzz target is relinked when its source, a header it includes (the .d
# file clang writes beside it) or the fuzz build of the library changed.
ifneq ($(MODE),fuzz)
build/fuzz/libpfcore.a: FORCE
	$(MAKE) MODE=fuzz build/fuzz/libpfcore.a
endif
build/fuzz/tests/fuzz/%: tests/fuzz/%.c build/fuzz/libpfcore.a
	@mkdir -p $(dir $@)
	clang $(CFLAGS_COMMON) -O1 -g -fsanitize=fuzzer,address,undefined -DPF_FUZZING $< -o $@ build/fuzz/libpfcore.a $(LIBS)

deps:
	@scripts/deps.sh

# Everything a user needs for a local instance: install, build, start.
run: deps
	$(MAKE) programs
	scripts/run.sh

# The README's test command: install (with what only tests use: the browser
# the page's test drives, systemd-analyze and strace for the units'), build
# with sanitizers, run all suites.
test: deps
	@scripts/deps.sh test
	$(MAKE) MODE=asan tests
	scripts/test.sh build/asan

unit:
	$(MAKE) MODE=asan tests
	scripts/test.sh build/asan unit

e2e:
	$(MAKE) MODE=asan tests
	scripts/test.sh build/asan e2e

browser deploy:
	@scripts/deps.sh test
	$(MAKE) MODE=asan tests
	scripts/test.sh build/asan $@

# Installs the daemons, postfach-ctl, postfach-send, the migrations and the
# systemd units (README, "Deployment: systemd"); DESTDIR for packaging.  The
# settings files under /etc/postfach are installed only where none exist.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
DATADIR := $(PREFIX)/share/postfach
DOCDIR  := $(PREFIX)/share/doc/postfach
UNITDIR := $(PREFIX)/lib/systemd/system
install: programs
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/sql $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/sysusers.d \
	    $(DESTDIR)$(PREFIX)/lib/tmpfiles.d $(DESTDIR)/etc/postfach
	install -m 0755 $(addprefix $(BUILD)/bin/,postfach-broker postfach-reader postfach-ctl \
	    postfach-send) $(DESTDIR)$(BINDIR)/
	install -m 0644 sql/*.sql $(DESTDIR)$(DATADIR)/sql/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	for u in postfach-broker.service postfach-reader.service postfach-audit-ship.service \
	    postfach-audit-ship.timer; do \
	    sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
	        scripts/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 scripts/systemd/postfach.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/postfach.conf
	install -m 0644 scripts/systemd/postfach.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/postfach.conf
	for c in broker reader; do \
	    install -m 0644 scripts/systemd/$$c.conf $(DESTDIR)$(DOCDIR)/$$c.conf.example && \
	    { [ -e $(DESTDIR)/etc/postfach/$$c.conf ] || \
	      install -m 0644 scripts/systemd/$$c.conf $(DESTDIR)/etc/postfach/$$c.conf; } || exit 1; \
	done

check-layout:
	@scripts/check-layout.sh

fuzz: deps
	$(MAKE) $(FUZZ_BINS)
	scripts/fuzz.sh $${FUZZ_SECONDS:-60}

bench: deps
	$(MAKE) programs
	scripts/bench.sh

# The fault tests stretched (broker kill -9 for 10 minutes, ten database
# crashes, ...): scripts/soak.sh BUILD [MINUTES]; `make test` runs them short.
soak: deps
	$(MAKE) MODE=asan tests
	scripts/soak.sh build/asan $${SOAK_MINUTES:-10}

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

# every object's header dependencies (-MMD), the programs' and tests' too:
# a changed struct in a header must rebuild whatever lays it out
-include $(LIB_OBJS:.o=.d) $(E2E_SUPPORT_OBJS:.o=.d)
-include $(patsubst %.c,$(BUILD)/obj/%.d,$(wildcard cmd/*/*.c) $(UNIT_SRCS) $(E2E_SRCS))
-include $(FUZZ_BINS:=.d)

FORCE:
