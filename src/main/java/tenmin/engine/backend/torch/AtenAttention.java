package tenmin.engine.backend.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.function.Consumer;

/**
 * Fused scaled-dot-product attention kernels of ATen, forward and backward, dropout 0, no mask tensor.
 * q (N, h, Tq, D), k (N, h, Tk, D), v (N, h, Tk, Dv) → out (N, h, Tq, Dv) and a log-sum-exp whose layout
 * depends on the kernel; {@link Forward} keeps it as the kernel returned it, with the RNG state tensors
 * the backward takes, and also gives it as (N, h, Tq) fp32 for the op contract.
 *
 * <pre>
 * // CPU (c_shim_cpu.h)
 * AOTITorchError aoti_torch_cpu__scaled_dot_product_flash_attention_for_cpu(AtenTensorHandle query,
 *     AtenTensorHandle key, AtenTensorHandle value, double dropout_p, int32_t is_causal,
 *     AtenTensorHandle* attn_mask, double* scale, AtenTensorHandle* ret0, AtenTensorHandle* ret1);
 * AOTITorchError aoti_torch_cpu__scaled_dot_product_flash_attention_for_cpu_backward(AtenTensorHandle grad_out,
 *     AtenTensorHandle query, AtenTensorHandle key, AtenTensorHandle value, AtenTensorHandle out,
 *     AtenTensorHandle logsumexp, double dropout_p, int32_t is_causal, AtenTensorHandle* attn_mask,
 *     double* scale, AtenTensorHandle* ret0, AtenTensorHandle* ret1, AtenTensorHandle* ret2);
 * // CUDA (c_shim_cuda.h)
 * AOTITorchError aoti_torch_cuda__scaled_dot_product_cudnn_attention(AtenTensorHandle query, AtenTensorHandle key,
 *     AtenTensorHandle value, AtenTensorHandle* attn_bias, int32_t compute_log_sumexp, double dropout_p,
 *     int32_t is_causal, int32_t return_debug_mask, double* scale, AtenTensorHandle* ret0 (out),
 *     AtenTensorHandle* ret1 (logsumexp), AtenTensorHandle* ret2 (cum_seq_q), AtenTensorHandle* ret3 (cum_seq_k),
 *     int64_t* ret4 (max_q), int64_t* ret5 (max_k), AtenTensorHandle* ret6 (philox_seed),
 *     AtenTensorHandle* ret7 (philox_offset), AtenTensorHandle* ret8 (debug_attn_mask));
 * AOTITorchError aoti_torch_cuda__scaled_dot_product_cudnn_attention_backward(AtenTensorHandle grad_out,
 *     AtenTensorHandle query, AtenTensorHandle key, AtenTensorHandle value, AtenTensorHandle out,
 *     AtenTensorHandle logsumexp, AtenTensorHandle philox_seed, AtenTensorHandle philox_offset,
 *     AtenTensorHandle attn_bias, AtenTensorHandle cum_seq_q, AtenTensorHandle cum_seq_k, int64_t max_q,
 *     int64_t max_k, double dropout_p, int32_t is_causal, double* scale, AtenTensorHandle* ret0,
 *     AtenTensorHandle* ret1, AtenTensorHandle* ret2);
 * AOTITorchError aoti_torch_cuda__scaled_dot_product_flash_attention(AtenTensorHandle query, AtenTensorHandle key,
 *     AtenTensorHandle value, double dropout_p, int32_t is_causal, int32_t return_debug_mask, double* scale,
 *     AtenTensorHandle* ret0, AtenTensorHandle* ret1, AtenTensorHandle* ret2, AtenTensorHandle* ret3,
 *     int64_t* ret4, int64_t* ret5, AtenTensorHandle* ret6, AtenTensorHandle* ret7, AtenTensorHandle* ret8);
 * AOTITorchError aoti_torch_cuda__scaled_dot_product_flash_attention_backward(AtenTensorHandle grad_out,
 *     AtenTensorHandle query, AtenTensorHandle key, AtenTensorHandle value, AtenTensorHandle out,
 *     AtenTensorHandle logsumexp, AtenTensorHandle cum_seq_q, AtenTensorHandle cum_seq_k, int64_t max_q,
 *     int64_t max_k, double dropout_p, int32_t is_causal, AtenTensorHandle philox_seed,
 *     AtenTensorHandle philox_offset, double* scale, AtenTensorHandle* ret0, AtenTensorHandle* ret1,
 *     AtenTensorHandle* ret2);
 * AOTITorchError aoti_torch_cuda__scaled_dot_product_efficient_attention(AtenTensorHandle query,
 *     AtenTensorHandle key, AtenTensorHandle value, AtenTensorHandle* attn_bias, int32_t compute_log_sumexp,
 *     double dropout_p, int32_t is_causal, double* scale, AtenTensorHandle* ret0 (out),
 *     AtenTensorHandle* ret1 (logsumexp, last dim padded to a multiple of 32), AtenTensorHandle* ret2 (philox_seed),
 *     AtenTensorHandle* ret3 (philox_offset));
 * AOTITorchError aoti_torch_cuda__scaled_dot_product_efficient_attention_backward(AtenTensorHandle grad_out_,
 *     AtenTensorHandle query, AtenTensorHandle key, AtenTensorHandle value, AtenTensorHandle attn_bias,
 *     AtenTensorHandle out, AtenTensorHandle logsumexp, AtenTensorHandle philox_seed,
 *     AtenTensorHandle philox_offset, double dropout_p, const int32_t* grad_input_mask,
 *     int64_t grad_input_mask_len_, int32_t is_causal, double* scale, AtenTensorHandle* ret0,
 *     AtenTensorHandle* ret1, AtenTensorHandle* ret2, AtenTensorHandle* ret3);
 * </pre>
 */
final class AtenAttention {

    /** Which fused kernel runs attention on CUDA ({@link #AUTO}: cuDNN for bf16/fp16, memory-efficient for fp32). */
    public enum Kernel { AUTO, CUDNN, FLASH, EFFICIENT }

    /**
     * A forward result: out (N, h, Tq, Dv) contiguous, lse (N, h, Tq) fp32 contiguous, the kernel's own saved
     * state, and the kernel that made it ({@code null} on the CPU), which its backward must use.
     */
    record Forward(NativeTensor out, NativeTensor lse, NativeTensor[] saved, Kernel kernel) {
    }

    private static final FunctionDescriptor CPU_FWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            JAVA_DOUBLE, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor CPU_BWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, JAVA_DOUBLE, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor CUDNN_FWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, JAVA_INT, JAVA_DOUBLE, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor CUDNN_BWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_DOUBLE,
            JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor FLASH_FWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            JAVA_DOUBLE, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS);
    private static final FunctionDescriptor FLASH_BWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_DOUBLE, JAVA_INT, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor EFF_FWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, JAVA_INT, JAVA_DOUBLE, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final FunctionDescriptor EFF_BWD = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_DOUBLE, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS,
            ADDRESS, ADDRESS, ADDRESS, ADDRESS);

    private final Aten at;
    private final boolean onCuda;
    private final KernelChoice choice;

    AtenAttention(Aten at, Kernel kernel) {
        this(at, kernel, !at.dev.equals("cpu"), System.err::println);
    }

    /**
     * {@code onCuda} false: the CPU kernel; true: the CUDA kernels (on a CPU device only in tests);
     * {@code warn} receives the line that says a kernel was replaced.
     */
    AtenAttention(Aten at, Kernel kernel, boolean onCuda, Consumer<String> warn) {
        this.at = at;
        this.onCuda = onCuda;
        this.choice = new KernelChoice(kernel, warn);
    }

    /** The kernel a call with {@code dtype} uses now on this device ({@code null} on the CPU). */
    Kernel kernelFor(int dtype) {
        return onCuda ? choice.current(dtype == at.shim.dtypeF32) : null;
    }

    /**
     * The forward with the kernel {@link #kernelFor} gives; under {@link Kernel#AUTO}, a kernel that fails
     * (libtorch's reason is on stderr) is replaced by the next that serves the dtype, for this call and
     * every later one, with one line saying so.
     */
    Forward forward(NativeTensor q, NativeTensor k, NativeTensor v, boolean causal, double scale) {
        return forward(q, k, v, causal, scale, false);
    }

    /**
     * As {@link #forward(NativeTensor, NativeTensor, NativeTensor, boolean, double)}; with {@code merge} the output
     * comes back with its heads merged, (N, Tq, h·Dv) contiguous, which the fused kernels' [B, S, H, D] output
     * layout gives without a copy (q, k and v may then be head views of (N, T, h·D) tensors).
     */
    Forward forward(NativeTensor q, NativeTensor k, NativeTensor v, boolean causal, double scale, boolean merge) {
        Forward raw = forwardRaw(q, k, v, causal, scale);
        try {
            NativeTensor out = laidOut(raw.out(), merge);
            return new Forward(out, raw.lse(), raw.saved(), raw.kernel());
        } catch (RuntimeException e) {
            NativeTensor.closeAll(raw.lse());
            NativeTensor.closeAll(raw.saved());
            throw e;
        }
    }

    /** A kernel's (N, h, T, D) result made contiguous as it is or, with {@code merge}, merged; closes {@code x}. */
    private NativeTensor laidOut(NativeTensor x, boolean merge) {
        return merge ? mergeConsuming(x) : at.contiguousConsuming(x);
    }

    /** (N, h, T, D) of any strides → (N, T, h·D) contiguous; closes {@code x}. */
    private NativeTensor mergeConsuming(NativeTensor x) {
        long[] sz = x.sizes();
        try (x; NativeTensor t = at.transpose(x, 1, 2);
             NativeTensor r = at.reshape(t, new long[] {sz[0], sz[2], sz[1] * sz[3]})) {
            return at.contiguous(r);
        }
    }

    private Forward forwardRaw(NativeTensor q, NativeTensor k, NativeTensor v, boolean causal, double scale) {
        boolean f32 = q.dtypeCode() == at.shim.dtypeF32;
        while (true) {
            Kernel kn = kernelFor(q.dtypeCode());
            try {
                return forwardWith(kn, q, k, v, causal, scale);
            } catch (TorchException e) {
                if (kn == null || !choice.failed(kn, f32, e)) {
                    throw e;
                }
            }
        }
    }

    private Forward forwardWith(Kernel kn, NativeTensor q, NativeTensor k, NativeTensor v, boolean causal,
                                double scale) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment scaleSeg = a.allocateFrom(JAVA_DOUBLE, scale);
            int c = causal ? 1 : 0;
            if (kn == null) {
                MemorySegment r = a.allocate(ADDRESS, 2);
                int rc = (int) at.shim.deviceOp("cpu", "_scaled_dot_product_flash_attention_for_cpu", CPU_FWD)
                        .invokeExact(q.handle(), k.handle(), v.handle(), 0.0, c, MemorySegment.NULL, scaleSeg, r,
                                r.asSlice(8));
                Aten.check(rc, "_scaled_dot_product_flash_attention_for_cpu", q, k, v);
                NativeTensor[] res = at.adoptResults(r, 2);
                return finish(null, res[0], res[1], res[1].share());
            }
            return switch (kn) {
                case CUDNN, AUTO -> {
                    MemorySegment r = a.allocate(ADDRESS, 9);
                    int rc = (int) at.shim.deviceOp("cuda", "_scaled_dot_product_cudnn_attention", CUDNN_FWD)
                            .invokeExact(q.handle(), k.handle(), v.handle(), MemorySegment.NULL, 1, 0.0, c, 0, scaleSeg,
                                    r, r.asSlice(8), r.asSlice(16), r.asSlice(24), r.asSlice(32), r.asSlice(40),
                                    r.asSlice(48), r.asSlice(56), r.asSlice(64));
                    Aten.check(rc, "_scaled_dot_product_cudnn_attention", q, k, v);
                    yield fromCuda(Kernel.CUDNN, r, q);
                }
                case FLASH -> {
                    MemorySegment r = a.allocate(ADDRESS, 9);
                    int rc = (int) at.shim.deviceOp("cuda", "_scaled_dot_product_flash_attention", FLASH_FWD)
                            .invokeExact(q.handle(), k.handle(), v.handle(), 0.0, c, 0, scaleSeg, r, r.asSlice(8),
                                    r.asSlice(16), r.asSlice(24), r.asSlice(32), r.asSlice(40), r.asSlice(48),
                                    r.asSlice(56), r.asSlice(64));
                    Aten.check(rc, "_scaled_dot_product_flash_attention", q, k, v);
                    yield fromCuda(Kernel.FLASH, r, q);
                }
                case EFFICIENT -> {
                    MemorySegment r = a.allocate(ADDRESS, 4);
                    int rc = (int) at.shim.deviceOp("cuda", "_scaled_dot_product_efficient_attention", EFF_FWD)
                            .invokeExact(q.handle(), k.handle(), v.handle(), MemorySegment.NULL, 1, 0.0, c, scaleSeg,
                                    r, r.asSlice(8), r.asSlice(16), r.asSlice(24));
                    Aten.check(rc, "_scaled_dot_product_efficient_attention", q, k, v);
                    NativeTensor[] res = at.adoptResults(r, 4);
                    long tq = q.sizes()[2];
                    NativeTensor lseView = at.narrow(res[1], 2, 0, tq);
                    // saved: native lse (padded), philox seed, philox offset
                    yield finish(Kernel.EFFICIENT, res[0], lseView, res[1], res[2], res[3]);
                }
            };
        } catch (Throwable t) {
            throw Shim.rethrow("attention", t);
        }
    }

    /** cuDNN / flash results: slots 0 out, 1 lse, 2-3 cum_seq (unused), 4-5 int64 max, 6-7 philox, 8 debug mask. */
    private Forward fromCuda(Kernel kn, MemorySegment r, NativeTensor q) {
        NativeTensor out = NativeTensor.adopt(at.shim, r.getAtIndex(ADDRESS, 0));
        NativeTensor lse = NativeTensor.adopt(at.shim, r.getAtIndex(ADDRESS, 1));
        NativeTensor[] rest = new NativeTensor[] {adoptOrNull(r, 2), adoptOrNull(r, 3), adoptOrNull(r, 6),
                adoptOrNull(r, 7), adoptOrNull(r, 8)};
        NativeTensor seed = rest[2];
        NativeTensor offset = rest[3];
        NativeTensor.closeAll(rest[0], rest[1], rest[4]);
        long[] qs = q.sizes();
        NativeTensor lseView = at.reshape(lse, new long[] {qs[0], qs[1], qs[2]});
        return finish(kn, out, lseView, lse, seed, offset);
    }

    private NativeTensor adoptOrNull(MemorySegment r, int i) {
        MemorySegment h = r.getAtIndex(ADDRESS, i);
        return h.equals(MemorySegment.NULL) ? null : NativeTensor.adopt(at.shim, h);
    }

    /** Makes the contract's lse contiguous (the view passed in is closed); out stays as the kernel laid it out. */
    private Forward finish(Kernel kn, NativeTensor out, NativeTensor lseView, NativeTensor... saved) {
        NativeTensor l = at.contiguousConsuming(lseView);
        return new Forward(out, l, saved, kn);
    }

    /**
     * dq, dk, dv. {@code saved} and {@code kn} are {@link Forward#saved()} and {@link Forward#kernel()} of the
     * matching forward. Under {@link Kernel#AUTO}, when that kernel's backward fails, the forward is run again
     * with the next kernel and its backward used (and kept for later calls), as in {@link #forward}.
     */
    NativeTensor[] backward(NativeTensor dOut, NativeTensor q, NativeTensor k, NativeTensor v, NativeTensor out,
                            NativeTensor[] saved, Kernel kn, boolean causal, double scale) {
        return backward(dOut, q, k, v, out, saved, kn, causal, scale, false);
    }

    /** As above; with {@code merge} the gradients come back (N, T, h·D) contiguous (see {@link #forward}). */
    NativeTensor[] backward(NativeTensor dOut, NativeTensor q, NativeTensor k, NativeTensor v, NativeTensor out,
                            NativeTensor[] saved, Kernel kn, boolean causal, double scale, boolean merge) {
        NativeTensor[] raw = backwardRaw(dOut, q, k, v, out, saved, kn, causal, scale);
        NativeTensor[] res = new NativeTensor[raw.length];
        try {
            for (int i = 0; i < raw.length; i++) {
                NativeTensor r = raw[i];
                raw[i] = null;
                res[i] = laidOut(r, merge);
            }
            return res;
        } catch (RuntimeException e) {
            NativeTensor.closeAll(raw);
            NativeTensor.closeAll(res);
            throw e;
        }
    }

    private NativeTensor[] backwardRaw(NativeTensor dOut, NativeTensor q, NativeTensor k, NativeTensor v,
                                       NativeTensor out, NativeTensor[] saved, Kernel kn, boolean causal, double scale) {
        try {
            return backwardWith(kn, dOut, q, k, v, out, saved, causal, scale);
        } catch (TorchException e) {
            if (kn == null || !choice.failed(kn, q.dtypeCode() == at.shim.dtypeF32, e)) {
                throw e;
            }
        }
        Forward again = forward(q, k, v, causal, scale);
        try {
            return backwardRaw(dOut, q, k, v, again.out(), again.saved(), again.kernel(), causal, scale);
        } finally {
            NativeTensor.closeAll(again.out(), again.lse());
            NativeTensor.closeAll(again.saved());
        }
    }

    private NativeTensor[] backwardWith(Kernel kn, NativeTensor dOut, NativeTensor q, NativeTensor k, NativeTensor v,
                                        NativeTensor out, NativeTensor[] saved, boolean causal, double scale) {
        NativeTensor nativeLse = saved[0];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment scaleSeg = a.allocateFrom(JAVA_DOUBLE, scale);
            int c = causal ? 1 : 0;
            MemorySegment r = a.allocate(ADDRESS, 4);
            if (kn == null) {
                int rc = (int) at.shim.deviceOp("cpu", "_scaled_dot_product_flash_attention_for_cpu_backward", CPU_BWD)
                        .invokeExact(dOut.handle(), q.handle(), k.handle(), v.handle(), out.handle(), nativeLse.handle(),
                                0.0, c, MemorySegment.NULL, scaleSeg, r, r.asSlice(8), r.asSlice(16));
                Aten.check(rc, "_scaled_dot_product_flash_attention_for_cpu_backward", dOut, q, k, v);
                return at.adoptResults(r, 3);
            }
            long tq = q.sizes()[2];
            long tk = k.sizes()[2];
            try (NativeTensor undefined = undefined();
                 NativeTensor seed = saved.length > 1 && saved[1] != null ? saved[1].share() : at.scalarLong(0);
                 NativeTensor offset = saved.length > 2 && saved[2] != null ? saved[2].share() : at.scalarLong(0)) {
                switch (kn) {
                    case CUDNN, AUTO -> {
                        int rc = (int) at.shim.deviceOp("cuda", "_scaled_dot_product_cudnn_attention_backward", CUDNN_BWD)
                                .invokeExact(dOut.handle(), q.handle(), k.handle(), v.handle(), out.handle(),
                                        nativeLse.handle(), seed.handle(), offset.handle(), undefined.handle(),
                                        undefined.handle(), undefined.handle(), tq, tk, 0.0, c, scaleSeg, r,
                                        r.asSlice(8), r.asSlice(16));
                        Aten.check(rc, "_scaled_dot_product_cudnn_attention_backward", dOut, q, k, v);
                        return at.adoptResults(r, 3);
                    }
                    case FLASH -> {
                        int rc = (int) at.shim.deviceOp("cuda", "_scaled_dot_product_flash_attention_backward", FLASH_BWD)
                                .invokeExact(dOut.handle(), q.handle(), k.handle(), v.handle(), out.handle(),
                                        nativeLse.handle(), undefined.handle(), undefined.handle(), tq, tk, 0.0, c,
                                        seed.handle(), offset.handle(), scaleSeg, r, r.asSlice(8), r.asSlice(16));
                        Aten.check(rc, "_scaled_dot_product_flash_attention_backward", dOut, q, k, v);
                        return at.adoptResults(r, 3);
                    }
                    default -> {
                        MemorySegment mask = a.allocateFrom(JAVA_INT, 1, 1, 1, 0);
                        // The memory-efficient backward reads `out` with the strides of the layout its forward wrote,
                        // [B, S, H, D] contiguous (it assumes a row stride of H*D whatever the tensor says), so the
                        // [B, H, S, D]-contiguous copy we keep is laid out that way again for it.
                        try (NativeTensor outT = at.transpose(out, 1, 2);
                             NativeTensor outBshd = at.contiguous(outT);
                             NativeTensor outView = at.transpose(outBshd, 1, 2)) {
                            int rc = (int) at.shim.deviceOp("cuda", "_scaled_dot_product_efficient_attention_backward",
                                    EFF_BWD).invokeExact(dOut.handle(), q.handle(), k.handle(), v.handle(),
                                    undefined.handle(), outView.handle(), nativeLse.handle(), seed.handle(),
                                    offset.handle(), 0.0, mask, 4L, c, scaleSeg, r, r.asSlice(8), r.asSlice(16),
                                    r.asSlice(24));
                            Aten.check(rc, "_scaled_dot_product_efficient_attention_backward", dOut, q, k, v);
                        }
                        NativeTensor[] res = at.adoptResults(r, 4);
                        NativeTensor.closeAll(res[3]);
                        return new NativeTensor[] {res[0], res[1], res[2]};
                    }
                }
            }
        } catch (Throwable t) {
            throw Shim.rethrow("attention backward", t);
        }
    }

    private NativeTensor undefined() {
        return at.returning("aoti_torch_new_uninitialized_tensor",
                (a, ret) -> (int) at.shim.newUninitializedTensor.invokeExact(ret));
    }
}
