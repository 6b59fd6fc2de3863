"""GEMM C = act(op(A) @ op(B) + bias), BLIS-style, for row-major arrays.

Design (docs/gemm.md has the measurements):
- B is packed into column panels NR wide (NR = 2 host vectors: 32 floats with AVX-512)
  and KC deep: each micro-kernel reads its B panel (KC x NR, 32 KiB) from L1,
  contiguously. Either each thread packs a panel just before sweeping it (when its rows
  make one A block) or all threads pack the whole of B first and share it
  (_scratch_layout says which and why).
- Each thread takes an equal part of C (whole MR-row panels, or NR-column panels when C is
  short) and, per block of A rows and per KC block, packs its A block into row panels MR
  tall (in L2), then sweeps its B panels over it. With operands past FAR_BYTES and B
  packed for all parts, each tile also requests a slice of the next B panel and the next
  tile's C rows into L2, one request per step of its k loop.
- The micro-kernel keeps an MR x NR tile of C in MR * 2 vector registers (24 of the 32
  zmm with AVX-512) and does one broadcast and two FMAs per row per k.
- Transposes are absorbed by the packing (no copy of the operand). A tile short of rows
  is computed with its missing rows repeating A's last one and only its rows stored; one
  short of columns (zero padding in the packed B panel) is computed into a scratch tile
  and its columns written by masked stores: no kernel touches memory outside A, B or C.
- A small row-major A (at most DIRECT_A_MAX elements, or under a C one panel wide) is
  read in place, where packing it would cost about as much as the product.
- On the last KC block the bias and activation are applied to each panel's strip of C
  once its tiles are done, while it is in cache, or to a whole block of C of at most
  EPILOGUE_BLOCK_BYTES once it is done (long rows vectorize better than a panel's 16 or
  32 columns): the linear layer's epilogue.
"""
import numpy as np
from numba import njit, prange

from ._jit import kernel
from ._simd import (
    VECTOR_BYTES,
    VECTOR_REGISTERS,
    borrowed,
    lanes,
    line_elements,
    prefetch_lines_l2,
    vadd,
    vbroadcast,
    vfma,
    vload,
    vload_first,
    vprefetch,
    vprefetch_l2,
    vstore,
    vstore_first,
    vtranspose_copy,
    vzero,
)
from .activations import epilogue

NV = 2                                     # vectors per micro-tile row
MR = 12 if VECTOR_REGISTERS >= 32 else 6   # rows: MR * NV accumulators + NV + 1 in use
KC = 256                                   # depth of a packed block
MC_MAX = 240                               # most rows of A a thread packs at once (L2)
LOCAL_A_BYTES = 480 << 10                  # most bytes of A a part packs at once when
                                           # it packs its own B panels (one block)
FAR_BYTES = 1 << 20                        # B and C past this: tiles request what is next
PACK_ROWS = 16                             # rows of B per job where whole rows are packed
EPILOGUE_BLOCK_BYTES = 64 << 10            # a C block at most this big: one epilogue call
DIRECT_A_MAX = 16384                       # elements of an A read in place, unpacked


def _micro_kernel_source(name, mr, nv, a_strides, far=False):
    """Source of
    name(kc, ap, a_off, [a_rs,] bp, b_off, c, c_off, ldc, rows, accumulate):

    C[c_off + i*ldc + (0..nv*L)] (+)= sum_k A(i, k) * bp[b_off + k*NR + (0..nv*L)] for
    i < rows <= mr, unrolled so that every accumulator is a local (a register). A(i, k) is
    ap[a_off + k*MR + i] from a packed panel (MR rows, whatever mr is), or with a_strides
    ap[a_off + i*a_rs + k] read in place (a row-major A). B comes from a packed panel, rows
    NR apart.

    A short tile (rows < mr: the last rows of C) is computed whole, its missing rows
    reading the last row of A again (packed panels hold zeros there), and only its rows
    of C are touched: no packing or scratch tile for the edge, and no access past A or C.

    far adds (nb_off, nb_count, nc, nc_off, nc_ld, nc_rows): while the k loop runs it
    requests into L2, one line a step, the lines of nc_rows rows of nc (the next tile's
    rows of C, nc_ld apart from nc_off, a row's lines in turn), then those of
    bp[nb_off : nb_off + nb_count] (a slice of the next B panel).
    """
    acc = [[f"c{i}_{v}" for v in range(nv)] for i in range(mr)]
    args = "kc, ap, a_off, a_rs," if a_strides else "kc, ap, a_off,"
    far_args = ", nb_off, nb_count, nc, nc_off, nc_ld, nc_rows" if far else ""
    lines = [f"def {name}({args} bp, b_off, c, c_off, ldc, rows, accumulate{far_args}):",
             "    L = lanes(c)"]
    if far:
        lines += ["    LE = line_elements(c)",
                  f"    CPL = max(1, {nv} * L // LE)",  # requests a row of the tile
                  "    nc_lines = nc_rows * CPL"]
    if a_strides:
        # row i's own base and the k index shared by all rows: with a pointer per row
        # stepped by a runtime stride, the k loop ran out of general registers
        lines += [f"    r{i} = a_off + min({i}, rows - 1) * a_rs" for i in range(mr)]
    # the tile's rows, wanted after the k loop: fetched while it runs
    for i in range(mr):
        guard = f"    if rows > {i}:\n    " if i else ""
        lines += [f"{guard}    vprefetch(c, c_off + {i} * ldc + {v} * L)" for v in range(nv)]
    lines += [f"    {acc_name} = vzero(c)" for row in acc for acc_name in row]

    def k_loop(bounds, request=None):
        body = [f"    for k in range({bounds}):",
                f"        pa = {'k' if a_strides else f'a_off + k * {MR}'}",
                f"        pb = b_off + k * {NV} * L"]
        body += [f"        b{v} = vload(bp, pb + {v} * L)" for v in range(nv)]
        if request:
            body.append(f"        {request}")
        for i in range(mr):
            body.append(f"        a = vbroadcast(ap, pa + {f'r{i}' if a_strides else i})")
            body += [f"        {acc[i][v]} = vfma(a, b{v}, {acc[i][v]})" for v in range(nv)]
        return body

    if far:
        # one request per step of k, so that they never queue up: the next tile's rows of
        # C, then the next B panel's slice, then steps without requests (three loops: a
        # test in the k loop cost the AVX2 kernel, 12 FMAs a step, 2-3%)
        lines += ["    c_end = min(nc_lines, kc)",
                  "    b_end = min(nc_lines + (nb_count + LE - 1) // LE, kc)"]
        lines += k_loop("c_end", "vprefetch_l2(nc, nc_off + k // CPL * nc_ld + k % CPL * LE)")
        lines += k_loop("c_end, b_end", "vprefetch_l2(bp, nb_off + (k - nc_lines) * LE)")
        lines += k_loop("b_end, kc")
    else:
        lines += k_loop("kc")
    for i in range(mr):
        indent = "    " * (2 if i else 1)
        if i:
            lines.append(f"    if rows > {i}:")
        lines.append(f"{indent}if accumulate:")
        lines += [f"{indent}    {acc[i][v]} = vadd({acc[i][v]}, "
                  f"vload(c, c_off + {i} * ldc + {v} * L))" for v in range(nv)]
        lines += [f"{indent}vstore(c, c_off + {i} * ldc + {v} * L, {acc[i][v]})"
                  for v in range(nv)]
    return "\n".join(lines) + "\n"


def _build_micro_kernel(name, mr, nv, a_strides, far=False):
    namespace = dict(lanes=lanes, vzero=vzero, vload=vload, vstore=vstore, vbroadcast=vbroadcast,
                     vfma=vfma, vadd=vadd, vprefetch=vprefetch, vprefetch_l2=vprefetch_l2,
                     line_elements=line_elements)
    source = _micro_kernel_source(name, mr, nv, a_strides, far)
    exec(compile(source, f"<{name} {mr}x{nv}v>", "exec"), namespace)
    # Not cached on its own (generated source has no file); it is compiled into, and
    # cached with, every GEMM that calls it.
    return njit(error_model="numpy")(namespace[name])


# Row counts of the micro-kernels: MR, and two shorter ones for a last row panel short of
# rows. The full kernel computes all MR rows whatever `rows` is, so a batch of 64 (5 x 12
# + 4 on AVX-512) did 72 rows' work; the tail's kernel has the next count at or above it.
TAIL_ROWS = (MR // 3, 2 * MR // 3)
# One vector wide (narrow), for a last panel of at most one vector's columns (a 10-class
# output layer): the full-width kernel would do NV times the multiply-adds, most into
# padding. Keyed by (rows, A read in place, vectors per row).
MICRO_KERNELS = {(mr, strided, nv): _build_micro_kernel(
    f"micro_kernel_{mr}x{nv}{'_strided' if strided else ''}", mr, nv, strided)
    for mr in (MR,) + TAIL_ROWS for strided in (False, True) for nv in (NV, 1)}
_far_kernel = _build_micro_kernel(f"micro_kernel_{MR}x{NV}_far", MR, NV, False, True)


def _tile_source():
    """_tile's body: one branch per (strided, narrow, row count) calling its kernel."""
    lines = ["def _tile(kc, strided, narrow, a, a_off, a_rs, bp, b_off, c, c_off, ldc, rows,",
             "          accumulate):"]
    for strided in (True, False):
        lines.append(f"    {'if' if strided else 'else'}{' strided' if strided else ''}:")
        for narrow in (True, False):
            lines.append(f"        {'if narrow' if narrow else 'else'}:")
            nv = 1 if narrow else NV
            for j, mr in enumerate(TAIL_ROWS + (MR,)):
                test = f"if rows <= {mr}" if j == 0 else (
                    "else" if mr == MR else f"elif rows <= {mr}")
                a_args = "a, a_off, a_rs" if strided else "a, a_off"
                lines += [f"            {test}:",
                          f"                K_{mr}_{int(strided)}_{nv}(kc, {a_args}, bp, b_off, "
                          "c, c_off, ldc, rows, accumulate)"]
    return "\n".join(lines) + "\n"


def _build_tile():
    namespace = {f"K_{mr}_{int(strided)}_{nv}": fn
                 for (mr, strided, nv), fn in MICRO_KERNELS.items()}
    exec(compile(_tile_source(), "<_tile>", "exec"), namespace)
    return njit(error_model="numpy", inline="always")(namespace["_tile"])


# One micro-tile of `rows` rows: a row-major A read in place (strided, rows a_rs apart)
# or from a packed panel (a_rs unused); full width or one vector (narrow); the kernel
# with the fewest rows that covers `rows`.
_tile = _build_tile()


@njit(cache=True, error_model="numpy")
def _pack_panel(src, base, stride_i, stride_k, n, width, kc, panel):
    """panel[k * width + i] = src[base + i * stride_i + k * stride_k] for i < n, k < kc, and
    0 for n <= i < width: one panel of op(A) (width MR) or op(B) (width NR) from a flat
    row-major operand, whichever way it is transposed."""
    L = lanes(panel)
    if stride_i == 1:  # each k is a contiguous run of the operand: vectorized copies
        if n == width and width % L == 0:  # a whole panel: vector loads and stores
            for k in range(kc):
                s, d = base + k * stride_k, k * width
                for v in range(0, width, L):
                    vstore(panel, d + v, vload(src, s + v))
            return
        # A ragged panel (the last columns of B), or a row of an A panel (MR, which need not
        # be a multiple of L): per vector, masked loads read only the valid elements and
        # give zeros for the padding, and masked stores stay inside the panel's row. (A
        # scalar loop here cost more than the whole micro-kernel at 12x10x128.)
        for k in range(kc):
            d, s = k * width, base + k * stride_k
            for v in range(0, width, L):
                room = min(L, width - v)
                have = min(max(n - v, 0), room)
                vec = vload(src, s + v) if have == L else vload_first(src, s + v, have)
                if room == L:
                    vstore(panel, d + v, vec)
                else:
                    vstore_first(panel, d + v, vec, room)
        return
    # The operand's rows are the panel's k (stride_k == 1, as in both callers): lanes x lanes
    # blocks are transposed in registers, zero padding past n included; a scalar gather
    # down the columns does the last kc % lanes k (and everything for another stride_k).
    k_full = kc - kc % L if stride_k == 1 else 0
    # A panel narrower than a vector (MR = 6 rows with 8 lanes, 12 with 16) stores whole
    # vectors, each running L - width elements into the next k's row, which the next store
    # (or the next block, or the tail below) writes over: masked stores cost several times
    # more on AMD (VEX vmaskmovps). Not where the last store would leave the panel.
    for k0 in range(0, k_full, L):
        for i0 in range(0, width, L):
            if i0 < n:
                store = min(L, width - i0)
                if width < L and (k0 + L - 1) * width + L <= panel.size:
                    store = L
                vtranspose_copy(src, base + i0 * stride_i + k0, stride_i, min(L, n - i0),
                                panel, k0 * width + i0, width, store)
            else:
                for k in range(k0, k0 + L):
                    for i in range(i0, min(i0 + L, width)):
                        panel[k * width + i] = 0
    for k in range(k_full, kc):
        d, s = k * width, base + k * stride_k
        for i in range(n):
            panel[d + i] = src[s + i * stride_i]
        for i in range(n, width):
            panel[d + i] = 0


@njit(cache=True, error_model="numpy")
def _pack_row(src, base, n, dst, start, panel_size):
    """One row of op(B), src[base : base + n], into row k of every packed panel:
    dst[start + q * panel_size + (0..NR)] for panel q, zeros past n (_pack_panel, one k
    deep, per panel)."""
    nr = NV * lanes(dst)
    for j0 in range(0, n, nr):
        d = start + j0 // nr * panel_size
        _pack_panel(src, base + j0, 1, 0, min(nr, n - j0), nr, 1, dst[d: d + nr])


@njit(cache=True)
def _b_panel_source(trans_b, ldb, k0, j0):
    """(base, stride_j, stride_k) of op(B)'s element (k0, j0) in B's flat row-major data."""
    return (j0 * ldb + k0, ldb, 1) if trans_b else (k0 * ldb + j0, 1, ldb)


@njit(cache=True)
def _scratch_layout(M, N, K, itemsize, parts_m, parts_n):
    """(local_b, b_size, a_size, part_size): how gemm carves its scratch, in elements.

    B is packed once for all parts (b_size elements) unless every part's rows make one
    block of A of at most LOCAL_A_BYTES (local_b): then each part packs the panel it is
    about to sweep, into a panel of its own, and meets each panel once. Packing all of B
    first writes it out and reads it back from memory when it outgrows L2 (784 x 512
    float32 took 0.11 ms, a tenth of the product on one core). Each part has an A block
    (a_size), an edge tile and that panel, each a whole number of NR-wide rows long (so
    every piece starts on a cache line)."""
    mr, kc = MR, min(KC, K)
    nr = NV * VECTOR_BYTES // itemsize
    m_panels = -(-M // mr)
    part_rows = -(-m_panels // parts_m) * mr
    local_b = part_rows * kc * itemsize <= LOCAL_A_BYTES or parts_n > 1
    b_size = 0 if local_b else -(-N // nr) * nr * K
    a_size = -(-(part_rows if local_b else min(MC_MAX, part_rows)) * kc // nr) * nr
    part_size = a_size + mr * nr + (kc * nr if local_b else 0)
    return local_b, b_size, a_size, part_size


@njit(cache=True, error_model="numpy")
def _pack_a(a, trans_a, i0, rows, k0, kc, ap):
    """Rows i0..i0+rows, columns k0..k0+kc of op(A) into MR-row panels [k][MR]."""
    flat = a.reshape(a.size)
    ld = a.shape[1]
    for r0 in range(0, rows, MR):
        i = i0 + r0
        base, stride_i, stride_k = (k0 * ld + i, 1, ld) if trans_a else (i * ld + k0, ld, 1)
        _pack_panel(flat, base, stride_i, stride_k, min(MR, rows - r0), MR, kc,
                    ap[r0 * kc: (r0 + MR) * kc])


@kernel
def gemm(a, b, c, bias, has_epilogue, act, alpha, trans_a, trans_b, parts_m, parts_n, scratch):
    """C = op(A) @ op(B), then act(C + bias) if has_epilogue. Flags are runtime arguments:
    one compiled GEMM per dtype. C is cut into parts_m x parts_n parts, one per thread:
    rows in whole MR panels and columns in whole NR panels, as evenly as they go.
    `scratch` holds the packed operands: at least scratch_size(...) elements."""
    # Views without reference counts, so that every slice and reshape below is one too:
    # otherwise each micro-tile takes a dozen atomic increments and decrements of the
    # arrays' counts (the caller holds the arrays for the call).
    a, b, c, bias, scratch = borrowed(a), borrowed(b), borrowed(c), borrowed(bias), \
        borrowed(scratch)
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    flat_c = c.reshape(M * N)
    L = lanes(flat_c)
    NR = NV * L
    n_panels = (N + NR - 1) // NR
    m_panels = (M + MR - 1) // MR
    k_blocks = (K + KC - 1) // KC
    # K cut into equal blocks of at most KC (784 = 4 x 196, not 3 x 256 + 16: a thin last
    # block costs a whole pass over C for few multiply-adds)
    kc_step = (K + k_blocks - 1) // k_blocks
    flat_b = b.reshape(b.size)
    ldb = b.shape[1]
    local_b, b_size, a_size, part_size = _scratch_layout(M, N, K, flat_c.itemsize, parts_m, parts_n)
    # Packed B, shared: KC-deep blocks one after another, each holding n_panels panels
    # [k][NR]. (With local_b each part packs a panel just before sweeping it instead.)
    bp = scratch[:b_size]
    if not local_b and not trans_b:
        # B's rows run along the panels: each job copies whole rows of B into every panel,
        # reading each row front to back. (Panel by panel, a job read two lines of each of
        # KC rows a page apart, which the hardware prefetcher does not follow: packing all
        # of a 1024x1024 B took 16% of a two-thread product.)
        groups = (kc_step + PACK_ROWS - 1) // PACK_ROWS
        for job in prange(k_blocks * groups):
            p, g = job // groups, job % groups
            k0 = p * kc_step
            kc = min(kc_step, K - k0)
            for r in range(g * PACK_ROWS, min((g + 1) * PACK_ROWS, kc)):
                _pack_row(flat_b, (k0 + r) * ldb, N, bp, k0 * n_panels * NR + r * NR, kc * NR)
    elif not local_b:
        for job in prange(k_blocks * n_panels):
            p, panel = job // n_panels, job % n_panels
            k0 = p * kc_step
            kc = min(kc_step, K - k0)
            base, stride_j, stride_k = _b_panel_source(trans_b, ldb, k0, panel * NR)
            start = k0 * n_panels * NR + panel * kc * NR
            _pack_panel(flat_b, base, stride_j, stride_k, min(NR, N - panel * NR), NR, kc,
                        bp[start: start + kc * NR])
    # A row-major A is read in place, unpacked, where packing costs more than it saves:
    # when C is one panel wide (each row of A meets one micro-tile), or A is small enough
    # to stay in cache. (A transposed A is always packed, by vector copies: read in place
    # it needed a pointer per row in the micro-kernel, more than x86's registers.)
    direct = not trans_a and (n_panels == 1 or M * K <= DIRECT_A_MAX)
    flat_a = a.reshape(a.size)
    lda = a.shape[1]
    parts = parts_m * parts_n
    # Tiles request what they sweep next (below) only from a B packed for all parts, and
    # only past FAR_BYTES: operands that stay in cache need no requests ahead (each costs
    # a few instructions per tile: 64x128x128 took 7% longer with them)
    far = not local_b and (K * N + M * N) * flat_c.itemsize > FAR_BYTES
    for part in prange(parts):
        pm, pn = part // parts_n, part % parts_n
        start = b_size + part * part_size
        ap = scratch[start: start + a_size]
        tile = scratch[start + a_size: start + a_size + MR * NR]
        bl = scratch[start + a_size + MR * NR: start + part_size]
        first_panel, end_panel = pn * n_panels // parts_n, (pn + 1) * n_panels // parts_n
        row_start = pm * m_panels // parts_m * MR
        row_end = min(M, (pm + 1) * m_panels // parts_m * MR)
        # Blocks of at most MC_MAX rows (A's block must fit L2), equal in size.
        part_panels = (row_end - row_start + MR - 1) // MR
        n_blocks = 1 if local_b else (part_panels * MR + MC_MAX - 1) // MC_MAX
        for blk in range(n_blocks):
            i0 = row_start + blk * part_panels // n_blocks * MR
            rows = min(row_end, row_start + (blk + 1) * part_panels // n_blocks * MR) - i0
            # a C block this small gets its epilogue in one call once it is done
            whole_block = (rows * (end_panel - first_panel) * NR * flat_c.itemsize
                           <= EPILOGUE_BLOCK_BYTES)
            for p in range(k_blocks):
                k0 = p * kc_step
                kc = min(kc_step, K - k0)
                if not direct:
                    _pack_a(a, trans_a, i0, rows, k0, kc, ap)
                n_tiles = (rows + MR - 1) // MR
                finish = has_epilogue and p == k_blocks - 1  # the epilogue's turn
                for panel in range(first_panel, end_panel):
                    j0 = panel * NR
                    nr = min(NR, N - j0)
                    narrow = nr <= L
                    if local_b:
                        base, stride_j, stride_k = _b_panel_source(trans_b, ldb, k0, j0)
                        _pack_panel(flat_b, base, stride_j, stride_k, nr, NR, kc, bl)
                        panel_b, b_off = bl, 0
                    else:
                        panel_b, b_off = bp, k0 * n_panels * NR + panel * kc * NR
                    # With B packed for all parts, the panel swept next (after the last, the
                    # next KC block's first) is requested into L2 a slice per tile: else its
                    # first tile waits for memory, as the hardware prefetcher only follows
                    # the current panel. Not where parts pack their own panels: requests
                    # for B's rows (a page apart) and for C's next rows cost more there than
                    # they saved (512x1024x784 on two threads: 5% and 4%).
                    run = next_off = 0  # each tile's slice, in elements (0: none)
                    if far:
                        k1, j1 = (k0, j0 + NR) if panel + 1 < end_panel else (
                            (p + 1) % k_blocks * kc_step, first_panel * NR)
                        kc1 = min(kc_step, K - k1)
                        next_off = k1 * n_panels * NR + j1 // NR * kc1 * NR
                        run = (kc1 * NR + n_tiles - 1) // n_tiles
                    for r0 in range(0, rows, MR):
                        i = i0 + r0
                        mr = min(MR, rows - r0)
                        full = nr == NR
                        # A tile short of columns is computed whole into `tile`, then
                        # written where C is (one short of rows writes its rows only).
                        out, out_off, ldc = (flat_c, i * N + j0, N) if full else (tile, 0, NR)
                        ni, nj = (i + MR, j0) if r0 + MR < rows else (i0, j0 + NR)
                        if far and full and mr == MR and not direct:
                            # the requests ride in the k loop, one per step
                            _far_kernel(kc, ap, r0 * kc, panel_b, b_off, out, out_off, ldc,
                                        MR, p > 0, next_off + r0 // MR * run, run, flat_c,
                                        ni * N + nj, N, max(0, min(MR, M - ni)))
                            continue
                        prefetch_lines_l2(bp, next_off + r0 // MR * run, run)
                        if far:  # and the next tile's rows of C
                            for r in range(min(MR, M - ni)):
                                prefetch_lines_l2(flat_c, (ni + r) * N + nj, NR)
                        if direct:
                            _tile(kc, True, narrow, flat_a, i * lda + k0, lda, panel_b, b_off,
                                  out, out_off, ldc, mr, full and p > 0)
                        else:
                            _tile(kc, False, narrow, ap, r0 * kc, 0, panel_b, b_off, out,
                                  out_off, ldc, mr, full and p > 0)
                        if not full:  # its nr columns, by masked vector stores
                            for r in range(mr):
                                d, t = (i + r) * N + j0, r * NR
                                for v in range(0, nr, L):
                                    count = min(L, nr - v)
                                    vec = vload(tile, t + v)
                                    if p > 0:
                                        vec = vadd(vec, vload_first(flat_c, d + v, count))
                                    vstore_first(flat_c, d + v, vec, count)
                    if finish and not whole_block:
                        epilogue(c, i0, rows, j0, nr, bias, act, alpha)  # the strip is done
                if finish and whole_block:
                    j_lo = first_panel * NR
                    epilogue(c, i0, rows, j_lo, min(N, end_panel * NR) - j_lo, bias, act, alpha)


def micro_tile(dtype):
    """(MR, NR): the rows and columns of C one micro-kernel call keeps in registers."""
    return MR, panel_width(dtype)


def panel_width(dtype):
    """NR for a NumPy dtype: the micro-tile's width, NV host vectors."""
    return NV * VECTOR_BYTES // np.dtype(dtype).itemsize


def scratch_size(M, N, K, dtype, parts_m, parts_n):
    """Elements of scratch a gemm call with this partition needs (the kernel carves it up
    by the same _scratch_layout)."""
    _, b_size, _, part_size = _scratch_layout(M, N, K, np.dtype(dtype).itemsize, parts_m,
                                             parts_n)
    return b_size + parts_m * parts_n * part_size


# Elements of A from which A^T @ (a narrow B) is computed as its transpose (below, a
# small A loses: 784x10x32 9.4 -> 11.3 us)
TRANSPOSE_MIN_A = 1 << 17


def better_transposed(M, N, K, trans_a, has_epilogue, dtype):
    """Whether C = A^T @ op(B) is faster computed as C^T = op(B)^T @ A, then transposed:
    C one panel wide with its columns filling under 80% of the vectors they take (a
    10-class layer's weight gradient x^T dz: 10 of 16 lanes), a large A, no epilogue.
    C^T has full-width panels, and A's rows are read as stored instead of packed by
    vector transposes. Two threads, 784x10x512: 84 -> 62 us (AVX-512), 89 -> 67
    (haswell); a C a whole vector or panel wide gains nothing or loses (784x32x512 104
    -> 111)."""
    nr = panel_width(dtype)
    lanes = nr // NV
    return (trans_a and not has_epilogue and N <= nr and 5 * N < 4 * (-(-N // lanes) * lanes)
            and M >= nr and M * K >= TRANSPOSE_MIN_A)


# What packing one element of an operand costs, in multiply-adds of the micro-kernel: a
# part's cost is rows x cols + PACK_COST x (rows + cols) per k. Fitted to the splits
# measured below: two cycles an element, far slower than a pack alone, as inside a product
# the packs wait for lines from L3 or memory (docs/gemm.md)
PACK_COST = 64


def partition(M, N, K, dtype, threads):
    """(parts_m, parts_n): the split of C among the threads whose slowest part has the
    least work and packing. A part packs every row of op(A) it covers and, when it packs
    its own B panels, every column of op(B): on two threads, splitting the rows has both
    threads pack all of B, splitting the columns has both pack all of A. Columns are cut
    only where all of a part's rows make one A block (it sweeps each of its B panels over
    that block in L2), and a split with more column parts must cost 5% less: at 256^3 on
    the haswell target the two cost within 2% and the columns ran 8% slower. (Two
    threads, AVX-512, against cutting rows whenever there are enough: 256x784x512 with B
    transposed 0.80-0.82 -> 0.71-0.74 ms, 64x1024x1024 0.77-0.91 -> 0.59-0.65.)"""
    if threads <= 1:
        return 1, 1
    nr = panel_width(dtype)
    m_panels, n_panels = -(-M // MR), -(-N // nr)
    # bytes of A per MR rows, counted as _scratch_layout counts them
    a_block = MR * min(KC, K) * np.dtype(dtype).itemsize
    best, best_cost = (1, 1), None
    for parts_m in range(min(threads, m_panels), 0, -1):
        parts_n = min(threads // parts_m, n_panels)
        row_panels = -(-m_panels // parts_m)
        if parts_n > 1 and row_panels * a_block > LOCAL_A_BYTES:
            continue  # its rows would not make one A block
        rows, cols = row_panels * MR, -(-n_panels // parts_n) * nr
        cost = rows * cols + PACK_COST * (rows + cols)
        if best_cost is None or cost < 0.95 * best_cost:
            best, best_cost = (parts_m, parts_n), cost
    return best
