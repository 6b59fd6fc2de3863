// The emulator's thread model (emu.h declares it): a block's threads are fibers that one
// OS thread runs in turn, each until it reaches a barrier or exits, a warp at a time: the
// scheduler releases a warp whose lanes all wait at a warp-synchronous step and runs it
// on, and when no thread can run, releases the block if every live thread waits at the
// same __syncthreads; anything else is a barrier some thread never reaches, and the
// launch fails naming it. A fault (an access into a guard page around an array, see
// cupy_shim.py) ends the launch with its address.
#include <csetjmp>
#include <csignal>
#include <sys/mman.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <string>
#include <vector>

#include "emu.h"

namespace emu {
namespace {

void fiber_main();

// Switching fibers: on x86-64 a few instructions that swap the callee-saved registers and
// the stack pointer (ucontext's swapcontext also makes a system call per switch, and a
// block of 1024 threads switches twice per thread at every barrier); elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void emu_switch(void** save_sp, void* load_sp);
asm(R"(
    .text
    .p2align 4
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");

struct Context {
    void* sp;
};

// A stack that emu_switch "returns" into fiber_main from, 16-byte aligned as after a call.
void prepare(Context& c, char* stack, size_t bytes) {
    auto* top = reinterpret_cast<unsigned long long*>(
        reinterpret_cast<unsigned long long>(stack + bytes) & ~15ull);
    top[-1] = 0;                                                 // fiber_main's return address
    top[-2] = reinterpret_cast<unsigned long long>(&fiber_main);  // emu_switch's
    for (int r = 3; r <= 8; ++r) top[-r] = 0;                     // rbp, rbx, r12 .. r15
    unsigned control[2] = {0x1f80u, 0x037fu};                     // default MXCSR, x87 CW
    std::memcpy(&top[-9], control, 8);
    c.sp = &top[-9];
}

void switch_to(Context& from, Context& to) { emu_switch(&from.sp, to.sp); }
#else
struct Context {
    ucontext_t uc;
};

void prepare(Context& c, char* stack, size_t bytes) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = bytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, fiber_main, 0);
}

void switch_to(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

enum State { RUNNABLE, AT_SYNCTHREADS, AT_WARP_SYNC, EXITED };

struct Fiber {
    Thread thread;
    Context context;
    State state;
    unsigned mask;     // at a warp step: the lanes it waits for
    int line;          // at __syncthreads: which one
    const char* what;  // at a warp step: which intrinsic
};

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr size_t PAGE = 4096;

Context scheduler;
std::vector<Fiber> fibers;
std::vector<char*> stacks;  // kept across launches
std::vector<unsigned long long> slots;
std::vector<unsigned char> shared;
Fiber* running = nullptr;
dim3 block_index, block_size, grid_size;
void (*body)(void*) = nullptr;
void* body_arg = nullptr;
std::string failure;
sigjmp_buf fault_return;
unsigned long long fault_at = 0;
// Threads run last to first between barriers: a read of another thread's write that no
// barrier orders gives a different answer in one of the two orders.
int reverse_order = 0;
std::vector<std::pair<void*, size_t>> static_shared;  // every __shared__ variable seen
unsigned long long blocks_run = 0;                    // over all launches

char* new_stack() {  // with a guard page below it: an overflow faults instead of corrupting
    void* p = mmap(nullptr, STACK_BYTES + PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, PAGE, PROT_NONE);
    return static_cast<char*>(p) + PAGE;
}

void fiber_main() {
    body(body_arg);
    running->state = EXITED;
    switch_to(running->context, scheduler);  // never resumed
    __builtin_unreachable();
}

void on_fault(int, siginfo_t* info, void*) {
    fault_at = (unsigned long long)info->si_addr;
    siglongjmp(fault_return, 1);
}

std::string where(const Fiber& f) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "block (%u, %u, %u) thread (%u, %u, %u)", block_index.x,
                  block_index.y, block_index.z, f.thread.idx.x, f.thread.idx.y,
                  f.thread.idx.z);
    return buf;
}

// Release warp w if its lanes have all arrived at a warp step; false if none waits at one,
// and an error naming the lane when one never can arrive.
bool release_warp(unsigned w) {
    Fiber* first = nullptr;
    for (unsigned l = 0; l < 32 && w * 32 + l < fibers.size(); ++l)
        if (fibers[w * 32 + l].state == AT_WARP_SYNC) {
            first = &fibers[w * 32 + l];
            break;
        }
    if (!first) return false;
    for (unsigned l = 0; l < 32; ++l) {
        if (!(first->mask >> l & 1u)) continue;
        size_t i = w * 32 + l;
        auto stuck = [&](const std::string& why) {  // formatted only on failure
            return std::string(where(*first) + " waits in " + first->what + " for lane " +
                               std::to_string(l) + ", which " + why);
        };
        if (i >= fibers.size()) throw stuck("the block does not have");
        const Fiber& other = fibers[i];
        if (other.state == EXITED) throw stuck("has exited");
        if (other.state == AT_SYNCTHREADS)
            throw stuck("waits at __syncthreads (line " + std::to_string(other.line) + ")");
        if (other.mask != first->mask) throw stuck("waits with another mask");
    }
    for (unsigned l = 0; l < 32; ++l)
        if (first->mask >> l & 1u) fibers[w * 32 + l].state = RUNNABLE;
    return true;
}

// Every warp has run on until its threads wait at __syncthreads or have exited (run_block
// releases warp steps as it goes): release the block if they all wait at the same one, or
// explain why not; false when every thread has exited.
bool release_block() {
    const Fiber* first = nullptr;
    for (Fiber& f : fibers) {
        if (f.state == EXITED) continue;
        if (!first) first = &f;
        if (f.line != first->line)
            throw std::string("threads wait at different __syncthreads: " + where(*first) +
                              " at line " + std::to_string(first->line) + ", " + where(f) +
                              " at line " + std::to_string(f.line));
    }
    if (!first) return false;  // every thread has exited
    for (Fiber& f : fibers)
        if (f.state != EXITED) f.state = RUNNABLE;
    return true;
}

void run_block() {
    ++blocks_run;
    for (size_t i = 0; i < fibers.size(); ++i) {
        Fiber& f = fibers[i];
        prepare(f.context, stacks[i], STACK_BYTES);
        f.state = RUNNABLE;
    }
    std::fill(shared.begin(), shared.end(), 0xff);  // uninitialized: NaN, as a hint
    for (auto& region : static_shared) std::memset(region.first, 0xff, region.second);
    size_t count = fibers.size();
    unsigned warps = (unsigned)(count + 31) / 32;
    // A warp runs on through its warp-synchronous steps until each of its threads waits at
    // __syncthreads or has exited, and only then the next warp: between two barriers, all
    // of one warp's accesses come before another's (in one order or, reversed, the other),
    // so a write that races another warp's read changes a result, e.g. a reduction's
    // partials rewritten for the next row before every warp has read them.
    for (;;) {
        for (unsigned k = 0; k < warps; ++k) {
            unsigned w = reverse_order ? warps - 1 - k : k;
            size_t lanes = std::min<size_t>(32, count - w * 32);
            do {
                for (size_t i = 0; i < lanes; ++i) {
                    Fiber& f = fibers[w * 32 + (reverse_order ? lanes - 1 - i : i)];
                    if (f.state != RUNNABLE) continue;
                    running = &f;
                    switch_to(scheduler, f.context);
                    running = nullptr;
                    if (!failure.empty()) throw failure;
                }
            } while (release_warp(w));
        }
        if (!release_block()) return;
    }
}

}  // namespace

extern "C" void emu_set_reverse_order(int reverse) { reverse_order = reverse; }

const Thread& current() { return running->thread; }
const dim3& block_idx() { return block_index; }
const dim3& block_dim() { return block_size; }
const dim3& grid_dim() { return grid_size; }
void* dynamic_shared() { return shared.data(); }
unsigned long long block_serial() { return blocks_run; }

void shared_region(void* p, size_t bytes) {
    for (auto& region : static_shared)
        if (region.first == p) return;
    static_shared.emplace_back(p, bytes);
    std::memset(p, 0xff, bytes);  // the first thread here has written nothing to it yet
}

unsigned long long* warp_slots() { return &slots[running->thread.warp * 32 * SLOTS]; }

void syncthreads(int line) {
    Fiber* f = running;
    f->state = AT_SYNCTHREADS;
    f->line = line;
    switch_to(f->context, scheduler);
}

void warp_sync(unsigned mask, const char* what) {
    Fiber* f = running;
    if (!(mask >> f->thread.lane & 1u))
        fail("a warp-synchronous step whose mask leaves out the calling lane");
    f->state = AT_WARP_SYNC;
    f->mask = mask;
    f->what = what;
    switch_to(f->context, scheduler);
}

void fail(const char* message) {
    Fiber* f = running;
    failure = where(*f) + ": " + message;
    f->state = EXITED;
    switch_to(f->context, scheduler);
    __builtin_unreachable();
}

int run(void (*entry)(void*), void* arg, dim3 grid, dim3 block, size_t shared_bytes,
        char* error, size_t error_len, unsigned long long* fault_address) {
    auto report = [&](const std::string& message) {
        std::snprintf(error, error_len, "%s", message.c_str());
        return 1;
    };
    size_t threads = (size_t)block.x * block.y * block.z;  // in CUDA's limits: Module.launch
    body = entry;
    body_arg = arg;
    failure.clear();
    grid_size = grid;
    block_size = block;
    while (stacks.size() < threads) {
        char* stack = new_stack();
        if (!stack) return report("no memory for a fiber's stack");
        stacks.push_back(stack);
    }
    fibers.assign(threads, Fiber{});
    for (size_t i = 0; i < threads; ++i) {
        Thread& t = fibers[i].thread;
        t.idx = dim3{(unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                     (unsigned)(i / ((size_t)block.x * block.y))};
        t.linear = (unsigned)i;
        t.lane = (unsigned)i % 32;
        t.warp = (unsigned)i / 32;
    }
    slots.assign((threads + 31) / 32 * 32 * SLOTS, 0);
    shared.assign(shared_bytes, 0xff);

    struct sigaction action {}, old_segv{}, old_bus{}, old_fpe{};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &old_segv);
    sigaction(SIGBUS, &action, &old_bus);
    sigaction(SIGFPE, &action, &old_fpe);
    int status = 0;
    if (sigsetjmp(fault_return, 1) == 0) {
        try {
            for (unsigned z = 0; z < grid.z; ++z)
                for (unsigned y = 0; y < grid.y; ++y)
                    for (unsigned x = 0; x < grid.x; ++x) {
                        block_index = dim3{x, y, z};
                        run_block();
                    }
        } catch (const std::string& message) {
            status = report(message);
        }
    } else {
        std::string who = running ? where(*running) : std::string("the emulator");
        status = report(who + ": memory fault");
        *fault_address = fault_at;
    }
    sigaction(SIGSEGV, &old_segv, nullptr);
    sigaction(SIGBUS, &old_bus, nullptr);
    sigaction(SIGFPE, &old_fpe, nullptr);
    running = nullptr;
    return status;
}

}  // namespace emu
