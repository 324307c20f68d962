# peqa — plain Makefile. Targets: all (default), check, golden, sanitize, tsan, cross,
# bench, clean. The ISA of a kernel file is decided by its name (see ISAFLAGS below); all other
# code compiles at the baseline target of the compiler.

CC      ?= cc
CFLAGS_BASE = -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -ffp-contract=off \
              -fno-strict-aliasing -fPIC -D_POSIX_C_SOURCE=200809L
CFLAGS  ?=
WERROR  ?=
# EMULATE=1: the emulated test build (see `emu` below). Never set for a library that is used.
EMULATE ?=
ALLCFLAGS = $(CFLAGS_BASE) $(if $(filter 1,$(EMULATE)),-DPEQA_X86_EMULATE) $(WERROR) $(CFLAGS)
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

CLI_SRC  := $(wildcard src/cli*.c)
LIB_SRC  := $(filter-out $(CLI_SRC),$(wildcard src/*.c)) $(wildcard kernels/ref/*.c) $(KERNEL_ISA_SRC)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/*.c) $(if $(filter 1,$(EMULATE)),tests/emu/test_emu_avx2.c)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
HDRS     := $(wildcard src/*.h kernels/*.h kernels/*/*.h tests/*.h tests/emu/*.h)

# Per-file ISA flags, chosen by the file name's suffix. In the emulated test build the AVX-512
# and VNNI files get AVX2 + FMA only: their wide intrinsics are replaced by plain C
# (tests/emu/x86_emu.h) and their 256-bit AVX2 code runs natively.
# (-fno-var-tracking: debug-location tracking through thousands of emulation calls in the
# unrolled kernels would dominate the build time.)
ifeq ($(EMULATE),1)
FLAGS_AVXVNNI    := -mavx2 -mfma -mf16c -fno-var-tracking
FLAGS_AVX512     := -mavx2 -mfma -mf16c -fno-var-tracking
FLAGS_AVX512VNNI := -mavx2 -mfma -mf16c -fno-var-tracking
else
FLAGS_AVXVNNI    := -mavx2 -mfma -mavxvnni
FLAGS_AVX512     := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
FLAGS_AVX512VNNI := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mfma
endif
isaflags = $(strip \
  $(if $(filter %_avx2.c,$1),-mavx2 -mfma -mf16c) \
  $(if $(filter %_avxvnni.c,$1),$(FLAGS_AVXVNNI)) \
  $(if $(filter %_avx512.c,$1),$(FLAGS_AVX512)) \
  $(if $(filter %_avx512vnni.c,$1),$(FLAGS_AVX512VNNI)) \
  $(if $(filter %_dotprod.c,$1),-march=armv8.2-a+dotprod))

.PHONY: all check emu golden sanitize tsan cross bench clean
all: $(BUILD)/libpeqa.a $(BUILD)/libpeqa.so $(BUILD)/peqa peqa

$(BUILD)/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(call isaflags,$<) -c $< -o $@

$(BUILD)/libpeqa.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libpeqa.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/peqa: $(CLI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/libpeqa.a
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

# The emulated test build (x86-64 only): the whole library and runner again in $(EMU_BUILD), with
# PEQA_X86_EMULATE defined, which (a) builds the AVX-512 / VNNI kernel files against the plain-C
# emulation of their intrinsics and (b) makes src/cpu.c report AVX-512, AVX-512 VNNI and AVX-VNNI
# on any CPU with AVX2. Its only use is tests/check.sh's emulated run; nothing else links it.
EMU_BUILD ?= $(BUILD)emu
emu:
	$(MAKE) BUILD=$(EMU_BUILD) EMULATE=1 $(EMU_BUILD)/peqa_tests

# The whole suite: native (every ISA level this CPU has, inside the runner), the AVX-512 / VNNI
# kernels on emulated intrinsics (x86-64), then AArch64 NEON under qemu (with and without
# dotprod). tests/check.sh adds the counts into one closing line.
ifeq ($(ARCH),x86_64)
check: $(BUILD)/peqa_tests $(BUILD)/peqa emu
	sh tests/check.sh $(BUILD) $(EMU_BUILD)
else
check: $(BUILD)/peqa_tests $(BUILD)/peqa
	sh tests/check.sh $(BUILD)
endif

golden: $(BUILD)/golden_gen
	$(BUILD)/golden_gen golden

sanitize:
	$(MAKE) BUILD=build/asan CC=$(CC) CFLAGS="-O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" build/asan/peqa_tests build/asan/peqa
	PEQA_NO_CROSS=1 sh tests/check.sh build/asan

# ThreadSanitizer needs the address-space layout it was built for. On kernels that randomise mmap
# with more bits than it supports (vm.mmap_rnd_bits = 32 on recent distributions; gcc 12's TSan
# then stops with "FATAL: ThreadSanitizer: unexpected memory mapping") the suite runs with ASLR
# off (setarch -R), which changes nothing for the tests. halt_on_error=1 ends the run at the first
# report, so tests/check.sh counts a race as a failure instead of printing a passing count.
tsan:
	$(MAKE) BUILD=build/tsan CC=$(CC) CFLAGS="-O1 -fsanitize=thread" LDFLAGS="-fsanitize=thread" \
	    build/tsan/peqa_tests build/tsan/peqa
	norand=; if setarch $$(uname -m) -R true 2>/dev/null; then norand="setarch $$(uname -m) -R"; fi; \
	TSAN_OPTIONS="halt_on_error=1 $$TSAN_OPTIONS" PEQA_NO_CROSS=1 $$norand sh tests/check.sh build/tsan

# AArch64 build (static, so qemu needs no sysroot); run by tests/check.sh when the tools exist.
CROSS_CC ?= aarch64-linux-gnu-gcc
cross:
	$(MAKE) BUILD=build/aarch64 CC=$(CROSS_CC) LDFLAGS=-static build/aarch64/peqa_tests build/aarch64/peqa

# Kernel benchmark (bench/README.md); not part of `all`. bench/peak_<isa>.c holds the machine-limit
# loops and takes its flags from its name like the kernels. `make bench` builds it and, when
# BENCH_ARGS is given (e.g. BENCH_ARGS=--quick), runs it with those arguments.
BENCH_SRC := bench/bench_kernels.c bench/limits.c \
             $(if $(filter x86_64,$(ARCH)),bench/peak_avx2.c bench/peak_avxvnni.c bench/peak_avx512.c bench/peak_avx512vnni.c)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)
BENCH_ARGS ?=
$(BUILD)/bench/%.o: bench/%.c bench/limits.h $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) $(call isaflags,$<) -c $< -o $@
$(BUILD)/bench_kernels: $(BENCH_OBJ) $(BUILD)/libpeqa.a
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)
# Training benchmark (PEQA throughput and peak RSS; bench/bench_train.c), built alongside.
$(BUILD)/bench_train: $(BUILD)/bench/bench_train.o $(BUILD)/libpeqa.a
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)
bench: $(BUILD)/bench_kernels $(BUILD)/bench_train
	@if [ -n "$(BENCH_ARGS)" ]; then $(BUILD)/bench_kernels $(BENCH_ARGS); \
	else echo "built $(BUILD)/bench_kernels (run it with --quick, --help; see bench/README.md)"; fi
	@echo "built $(BUILD)/bench_train (PEQA fine-tuning tokens/s and peak RSS; run it with --quick or --help)"

clean:
	rm -rf build peqa
