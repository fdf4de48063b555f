// Peak multiply-accumulate rates of one core, from register-only loops of
// independent instructions: upper bounds no int8 or float kernel on this core
// can beat. Built and run by tools/bench_cpu_floor.py; prints one JSON line.
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// 6 chains of vpmaddubsw (32 u8*s8 products) -> vpmaddwd by ones (to int32) -> vpaddd:
// the fastest exact int8 dot product without VNNI. 192 MACs per iteration.
__attribute__((target("avx2"))) static void int8_avx2(long n) {
  __asm__ volatile(
      "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\tvpsrlw $15, %%ymm15, %%ymm15\n\t"
      "1:\n\t"
      "vpmaddubsw %%ymm13, %%ymm14, %%ymm0\n\tvpmaddubsw %%ymm13, %%ymm14, %%ymm1\n\t"
      "vpmaddubsw %%ymm13, %%ymm14, %%ymm2\n\tvpmaddubsw %%ymm13, %%ymm14, %%ymm3\n\t"
      "vpmaddubsw %%ymm13, %%ymm14, %%ymm4\n\tvpmaddubsw %%ymm13, %%ymm14, %%ymm5\n\t"
      "vpmaddwd %%ymm15, %%ymm0, %%ymm0\n\tvpmaddwd %%ymm15, %%ymm1, %%ymm1\n\t"
      "vpmaddwd %%ymm15, %%ymm2, %%ymm2\n\tvpmaddwd %%ymm15, %%ymm3, %%ymm3\n\t"
      "vpmaddwd %%ymm15, %%ymm4, %%ymm4\n\tvpmaddwd %%ymm15, %%ymm5, %%ymm5\n\t"
      "vpaddd %%ymm0, %%ymm6, %%ymm6\n\tvpaddd %%ymm1, %%ymm7, %%ymm7\n\t"
      "vpaddd %%ymm2, %%ymm8, %%ymm8\n\tvpaddd %%ymm3, %%ymm9, %%ymm9\n\t"
      "vpaddd %%ymm4, %%ymm10, %%ymm10\n\tvpaddd %%ymm5, %%ymm11, %%ymm11\n\t"
      "dec %0\n\tjnz 1b\n\t"
      : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm13", "xmm14", "xmm15", "cc");
}

// 8 chains of vpdpbusd on zmm (64 u8*s8 MACs into int32 each). 512 MACs per iteration.
__attribute__((target("avx512f,avx512vnni"))) static void int8_avx512vnni(long n) {
  __asm__ volatile(
      "1:\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm0\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm1\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm2\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm3\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm4\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm5\n\t"
      "vpdpbusd %%zmm14, %%zmm15, %%zmm6\n\tvpdpbusd %%zmm14, %%zmm15, %%zmm7\n\t"
      "dec %0\n\tjnz 1b\n\t"
      : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm14", "xmm15", "cc");
}

// 10 chains of vfmadd231ps on ymm (8 float MACs each). 80 MACs per iteration.
__attribute__((target("avx2,fma"))) static void f32_fma(long n) {
  __asm__ volatile(
      "1:\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm0\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm1\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm2\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm3\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm4\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm5\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm6\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm7\n\t"
      "vfmadd231ps %%ymm14, %%ymm15, %%ymm8\n\tvfmadd231ps %%ymm14, %%ymm15, %%ymm9\n\t"
      "dec %0\n\tjnz 1b\n\t"
      : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm14",
        "xmm15", "cc");
}

// The same 10 chains on zmm registers (16 float MACs each). 160 MACs per iteration.
__attribute__((target("avx512f"))) static void f32_avx512(long n) {
  __asm__ volatile(
      "1:\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm0\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm1\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm2\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm3\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm4\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm5\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm6\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm7\n\t"
      "vfmadd231ps %%zmm14, %%zmm15, %%zmm8\n\tvfmadd231ps %%zmm14, %%zmm15, %%zmm9\n\t"
      "dec %0\n\tjnz 1b\n\t"
      : "+r"(n)::"xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm14",
        "xmm15", "cc");
}

// Best of 5 timed runs of 2e7 iterations, after a warm-up that lets the clock ramp.
static double gmacs(void (*loop)(long), double macs_per_iteration) {
  const long n = 20000000;
  loop(n / 10);
  double best = 0;
  for (int run = 0; run < 5; run++) {
    double start = now();
    loop(n);
    double rate = macs_per_iteration * n / (now() - start) / 1e9;
    if (rate > best) best = rate;
  }
  return best;
}

int main(void) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    printf("{\"error\": \"this CPU has no AVX2/FMA\"}\n");
    return 1;
  }
  printf("{\"int8_avx2_gmacs\": %.1f, \"f32_fma_gmacs\": %.1f", gmacs(int8_avx2, 192), gmacs(f32_fma, 80));
  if (__builtin_cpu_supports("avx512f")) printf(", \"f32_avx512_gmacs\": %.1f", gmacs(f32_avx512, 160));
  if (__builtin_cpu_supports("avx512vnni")) printf(", \"int8_avx512vnni_gmacs\": %.1f", gmacs(int8_avx512vnni, 512));
  printf("}\n");
  return 0;
}
