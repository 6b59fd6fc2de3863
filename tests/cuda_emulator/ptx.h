// The emulator's ptx.cuh: what each inline-PTX helper of matmul_tc.cu does, per the PTX ISA,
// written in C++. mma.sync is a warp-wide step: every lane posts its fragments, then each
// computes its own four outputs from all of them. cp.async copies are queued per thread and
// land either at once or only when cp.async.wait_group retires their group
// (emu_copies_land_late), the two ends of what the hardware may do: a missing wait or
// __syncthreads shows in one mode or the other.

extern "C" {
int emu_copies_land_late = 0;
}

namespace emu_ptx {
struct Copy {
    unsigned char* dst;
    const unsigned char* src;
    int size, src_bytes;
};
struct Queue {
    Copy copies[64];
    int count, groups[8], group_count;  // groups: copies committed by each open group
    unsigned long long block;           // the block it belongs to
};
static Queue queues[1024];

// This thread's queue; one left by an earlier block (a launch that failed, or a kernel
// that exited with copies in flight) is dropped.
inline Queue& queue() {
    Queue& q = queues[emu::current().linear];
    if (q.block != emu::block_serial()) {
        q.count = q.group_count = 0;
        q.block = emu::block_serial();
    }
    return q;
}

inline void land(const Copy& c) {  // src_bytes from the source, zeros up to size
    std::memcpy(c.dst, c.src, c.src_bytes);
    std::memset(c.dst + c.src_bytes, 0, c.size - c.src_bytes);
}

inline void issue(void* dst, const void* src, int size, int src_bytes) {
    if (src_bytes < 0 || src_bytes > size) emu::fail("cp.async with src-size outside [0, cp-size]");
    if ((unsigned long long)dst % size) emu::fail("cp.async to a misaligned shared address");
    if (src_bytes && (unsigned long long)src % size)
        emu::fail("cp.async from a misaligned global address");
    Copy c{static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), size,
           src_bytes};
    if (!emu_copies_land_late) return land(c);
    Queue& q = queue();
    if (q.count == 64) emu::fail("more than 64 cp.async copies in flight (emulator limit)");
    q.copies[q.count++] = c;
}
}  // namespace emu_ptx

inline void cp_async16(float* dst, const float* src, int src_bytes) {
    emu_ptx::issue(dst, src, 16, src_bytes);
}

inline void cp_async4(float* dst, const float* src, int src_bytes) {
    emu_ptx::issue(dst, src, 4, src_bytes);
}

inline void cp_async_commit() {
    emu_ptx::Queue& q = emu_ptx::queue();
    int committed = 0;
    for (int g = 0; g < q.group_count; ++g) committed += q.groups[g];
    if (q.group_count == 8) emu::fail("more than 8 cp.async groups in flight (emulator limit)");
    q.groups[q.group_count++] = q.count - committed;
}

// Lands every group but the newest N (and nothing of the copies not yet committed).
template <int N>
void cp_async_wait() {
    emu_ptx::Queue& q = emu_ptx::queue();
    if (q.group_count <= N) return;
    int retire = q.group_count - N, done = 0;
    for (int g = 0; g < retire; ++g) done += q.groups[g];
    for (int i = 0; i < done; ++i) emu_ptx::land(q.copies[i]);
    std::memmove(q.copies, q.copies + done, (q.count - done) * sizeof(emu_ptx::Copy));
    q.count -= done;
    std::memmove(q.groups, q.groups + retire, N * sizeof(int));
    q.group_count = N;
}

// cvt.rna.tf32.f32: to nearest, ties away from zero, 10 mantissa bits kept.
inline u32 to_tf32(float x) {
    u32 bits = __float_as_uint(x);
    if ((bits & 0x7f800000u) == 0x7f800000u) return bits;  // inf, NaN
    return (bits + 0x1000u) & 0xffffe000u;
}

namespace emu_ptx {
inline float tf32_value(u32 bits) { return __uint_as_float(bits); }

// Fragment layout of mma.m16n8k8 .tf32, row.col, as the PTX ISA gives it (section "Matrix
// Fragments for mma.m16n8k8"). g = lane / 4, t = lane % 4. A: register r holds row
// g + 8 (r % 2), k column t + 4 (r / 2). B: register r holds k row t + 4 r, column g.
// C: c[i] is row g + 8 (i / 2), column 2t + i % 2. tests/cuda_emulator/mma_fragments.json
// writes the same maps out from the ISA's figures; test_emulator checks this code by it.
inline float a_element(const unsigned long long* slots, int row, int k) {
    int g = row % 8, t = k % 4, r = row / 8 + 2 * (k / 4);
    return tf32_value((u32)slots[(4 * g + t) * emu::SLOTS + r]);
}

inline float b_element(const unsigned long long* slots, int k, int n) {
    int t = k % 4, r = k / 4;
    return tf32_value((u32)slots[(4 * n + t) * emu::SLOTS + 4 + r]);
}
}  // namespace emu_ptx

inline void mma_tf32(float* c, const u32* a, const u32* b) {
    unsigned long long* slots = emu::warp_slots();
    unsigned lane = emu::current().lane;
    for (int r = 0; r < 4; ++r) slots[lane * emu::SLOTS + r] = a[r];
    for (int r = 0; r < 2; ++r) slots[lane * emu::SLOTS + 4 + r] = b[r];
    emu::warp_sync(0xffffffffu, "mma.sync");
    int g = lane / 4, t = lane % 4;
    float out[4];
    for (int i = 0; i < 4; ++i) {
        int row = g + 8 * (i / 2), col = 2 * t + i % 2;
        float sum = c[i];
        for (int k = 0; k < 8; ++k)
            sum += emu_ptx::a_element(slots, row, k) * emu_ptx::b_element(slots, k, col);
        out[i] = sum;
    }
    emu::warp_sync(0xffffffffu, "mma.sync");  // every lane has read the fragments
    for (int i = 0; i < 4; ++i) c[i] = out[i];
}
