# peqa — plain Makefile. Targets: all (default), check, golden, sanitize, tsan, cross,
# bench, clean. The ISA of a kernel file is decided by its name (see ISAFLAGS below); all other
# code compiles at the baseline target of the compiler.

CC      ?= cc
CFLAGS_BASE = -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -ffp-contract=off \
              -fno-strict-aliasing -fPIC -D_POSIX_C_SOURCE=200809L
CFLAGS  ?=
WERROR  ?=
ALLCFLAGS = $(CFLAGS_BASE) $(WERROR) $(CFLAGS)
LDLIBS  = -lm -lpthread
BUILD   ?= build/native
ARCH    := $(shell $(CC) -dumpmachine | cut -d- -f1)

# kernel files by architecture
ifeq ($(ARCH),x86_64)
KERNEL_ISA_SRC := $(wildcard kernels/x86/*.c)
else ifeq ($(ARCH),aarch64)
KERNEL_ISA_SRC := $(wildcard kernels/arm/*.c)
else
KERNEL_ISA_SRC :=
endif

LIB_SRC  := $(filter-out src/cli.c,$(wildcard src/*.c)) $(wildcard kernels/ref/*.c) $(KERNEL_ISA_SRC)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/*.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
HDRS     := $(wildcard src/*.h kernels/*.h tests/*.h)

# Per-file ISA flags, chosen by the file name's suffix.
isaflags = $(strip \
  $(if $(filter %_avx2.c,$1),-mavx2 -mfma -mf16c) \
  $(if $(filter %_avxvnni.c,$1),-mavx2 -mfma -mavxvnni) \
  $(if $(filter %_avx512.c,$1),-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma) \
  $(if $(filter %_avx512vnni.c,$1),-mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma) \
  $(if $(filter %_dotprod.c,$1),-march=armv8.2-a+dotprod))

.PHONY: all check golden sanitize tsan cross bench clean
all: $(BUILD)/libpeqa.a $(BUILD)/libpeqa.so $(BUILD)/peqa peqa

$(BUILD)/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(call isaflags,$<) -c $< -o $@

$(BUILD)/libpeqa.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libpeqa.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/peqa: $(BUILD)/src/cli.o $(BUILD)/libpeqa.a
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# Convenience link at the top level for the README's commands.
peqa: $(BUILD)/peqa
	@if [ "$(BUILD)" = "build/native" ]; then ln -sf $(BUILD)/peqa peqa; fi

$(BUILD)/peqa_tests: $(TEST_OBJ) $(BUILD)/libpeqa.a
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/golden_gen: $(BUILD)/golden/gen.o $(BUILD)/tests/golden_io.o $(BUILD)/tests/case.o $(BUILD)/libpeqa.a
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)
$(BUILD)/golden/gen.o: golden/gen.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -Itests -c $< -o $@

# The whole suite: native (every ISA level this CPU has, inside the runner), then AArch64 NEON
# under qemu (with and without dotprod). tests/check.sh adds the counts into one closing line.
check: $(BUILD)/peqa_tests $(BUILD)/peqa
	sh tests/check.sh $(BUILD)

golden: $(BUILD)/golden_gen
	$(BUILD)/golden_gen golden

sanitize:
	$(MAKE) BUILD=build/asan CC=$(CC) CFLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" build/asan/peqa_tests build/asan/peqa
	PEQA_NO_CROSS=1 sh tests/check.sh build/asan

tsan:
	$(MAKE) BUILD=build/tsan CC=$(CC) CFLAGS="-O1 -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	    build/tsan/peqa_tests build/tsan/peqa
	PEQA_NO_CROSS=1 sh tests/check.sh build/tsan

# AArch64 build (static, so qemu needs no sysroot); run by tests/check.sh when the tools exist.
CROSS_CC ?= aarch64-linux-gnu-gcc
cross:
	$(MAKE) BUILD=build/aarch64 CC=$(CROSS_CC) LDFLAGS=-static build/aarch64/peqa_tests build/aarch64/peqa

bench: $(BUILD)/libpeqa.a
	@echo "bench: see bench/README.md"

clean:
	rm -rf build peqa
