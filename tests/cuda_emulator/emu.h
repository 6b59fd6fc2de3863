// The CUDA C that kernelgrad's kernels use, for g++ on the CPU (see __init__.py): types,
// intrinsics, and the thread model. Every CUDA thread of a block is a fiber; the blocks of
// a grid run one after another, which is one of the schedules a GPU may choose, so static
// storage serves as a block's shared memory. Barriers (__syncthreads, a warp's shuffles)
// switch fibers; a barrier that some thread can never reach is reported, not waited on.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Blocks run one at a time, so one static copy is each block's shared memory in turn.
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) uint4 {
    unsigned x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

namespace emu {
struct Thread {
    dim3 idx;
    unsigned linear, lane, warp;
};
const Thread& current();
const dim3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void syncthreads(int line);
// Parks this lane until every lane of `mask` has arrived (a warp-synchronous step).
void warp_sync(unsigned mask, const char* what);
// This warp's exchange slots: SLOTS 64-bit words per lane.
constexpr int SLOTS = 8;
unsigned long long* warp_slots();
void* dynamic_shared();
// A number no other block of any launch has: per-block state can tell it is stale.
unsigned long long block_serial();
// Each thread reaching a __shared__ declaration calls this (the translation inserts it), so
// that every block starts with the variable NaN-filled, as uninitialized as on a GPU.
void shared_region(void* p, size_t bytes);
[[noreturn]] void fail(const char* message);
// Runs entry(arg) as every thread of every block; 0, or 1 with `error` filled in.
int run(void (*entry)(void*), void* arg, dim3 grid, dim3 block, size_t shared_bytes,
        char* error, size_t error_len, unsigned long long* fault_address);
}  // namespace emu

#define threadIdx (emu::current().idx)
#define blockIdx (emu::block_idx())
#define blockDim (emu::block_dim())
#define gridDim (emu::grid_dim())
#define __syncthreads() emu::syncthreads(__LINE__)

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline int __float_as_int(float f) {
    int i;
    std::memcpy(&i, &f, 4);
    return i;
}
inline float __uint_as_float(unsigned i) { return __int_as_float((int)i); }
inline unsigned __float_as_uint(float f) { return (unsigned)__float_as_int(f); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
// A product rounded on its own, as on the GPU: never contracted into an FMA, also when the
// emulator is built with -ffp-contract=fast (the volatile store forces the rounding).
inline float __fmul_rn(float a, float b) {
    volatile float product = a * b;
    return product;
}

// Lane ^ lane_mask's value; every lane of `mask` must take part, as on the GPU.
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    static_assert(sizeof(T) <= 8, "shuffles move at most 64 bits");
    unsigned long long* slots = emu::warp_slots();
    unsigned lane = emu::current().lane, src = lane ^ (unsigned)(lane_mask & 31);
    unsigned long long bits = 0;
    std::memcpy(&bits, &v, sizeof v);
    slots[lane * emu::SLOTS] = bits;
    emu::warp_sync(mask, "__shfl_xor_sync");
    if (!(mask >> src & 1u)) emu::fail("__shfl_xor_sync reads a lane outside its mask");
    T r;
    std::memcpy(&r, &slots[src * emu::SLOTS], sizeof r);
    emu::warp_sync(mask, "__shfl_xor_sync");  // every lane has read before the slots are reused
    return r;
}

namespace emu {
// The launch: the host's argument list (pointers to each value, as cuLaunchKernel takes
// it) checked against the kernel's parameter list, count and sizes, then run.
template <class... P>
struct Call {
    void (*kernel)(P...);
    void** args;
};

template <class... P, size_t... I>
void invoke(Call<P...>* call, std::index_sequence<I...>) {
    call->kernel(*static_cast<std::remove_cv_t<P>*>(call->args[I])...);
}

template <class... P>
void entry(void* call) {
    invoke(static_cast<Call<P...>*>(call), std::index_sequence_for<P...>{});
}

template <class... P>
int launch(void (*kernel)(P...), const unsigned* grid, const unsigned* block,
           size_t shared_bytes, void** args, const size_t* sizes, int count, char* error,
           size_t error_len, unsigned long long* fault_address) {
    constexpr size_t expected[] = {sizeof(P)..., 0};
    if (count != (int)sizeof...(P)) {
        std::snprintf(error, error_len, "the kernel takes %d arguments, the launch passed %d",
                      (int)sizeof...(P), count);
        return 1;
    }
    for (int i = 0; i < count; ++i)
        if (sizes[i] != expected[i]) {
            std::snprintf(error, error_len,
                          "argument %d is %zu bytes wide, the kernel's parameter %zu", i,
                          sizes[i], expected[i]);
            return 1;
        }
    Call<P...> call{kernel, args};
    return run(&entry<P...>, &call, dim3{grid[0], grid[1], grid[2]},
               dim3{block[0], block[1], block[2]}, shared_bytes, error, error_len,
               fault_address);
}
}  // namespace emu
