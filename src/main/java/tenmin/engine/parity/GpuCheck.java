package tenmin.engine.parity;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import tenmin.engine.api.Backend;
import tenmin.engine.api.Backend.AttentionResult;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.torch.LibTorch;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchBackend.AttentionKernel;

/**
 * The one-call check for a GPU machine ({@code scripts/gpu-check.sh}): which libtorch and GPU were
 * found, op-by-op parity of the torch backend on CUDA against the {@code cpu} backend (fp32 and bf16;
 * attention with each fused kernel), and a micro-benchmark (bf16 conv3x3 640 channels at 64², cuDNN /
 * flash / memory-efficient attention B2 H10 S4096 D64, bf16 GEMM 8192³). Writes the report to
 * {@code <out>/gpu-check.txt} and standard output; exit code 0 when every parity check passed, 1 when one
 * failed, 3 when there is no usable GPU.
 *
 * <p>Usage: {@code java -cp tenmin.jar tenmin.engine.parity.GpuCheck [outDir] [--cpu-smoke]}; with
 * {@code --cpu-smoke} the same steps run on the CPU with small shapes (to try the check without a GPU).
 */
public final class GpuCheck {
    /** fp32 tolerance on the GPU: the issue's 1e-4 (cuDNN may use TF32 for fp32 convolutions). */
    static final double F32_TOL = 1e-4;
    /** bf16 tolerance on the GPU, relative to the largest value: issue 4's 2e-2 (also GpuStepParity's per tensor). */
    public static final double BF16_TOL = 2e-2;

    /** Benchmark sizes: the GPU ones, or small ones for a CPU smoke run. */
    private record Sizes(int convChannels, int convSide, int seq, int gemm, int iters) {
        static final Sizes GPU = new Sizes(640, 64, 4096, 8192, 20);
        static final Sizes SMOKE = new Sizes(32, 16, 128, 256, 3);
    }

    private final List<String> lines = new ArrayList<>();
    private final PrintStream out;
    private final boolean smoke;
    private final Sizes sizes;

    private GpuCheck(PrintStream out, boolean smoke) {
        this.out = out;
        this.smoke = smoke;
        this.sizes = smoke ? Sizes.SMOKE : Sizes.GPU;
    }

    public static void main(String[] args) throws IOException {
        boolean smoke = Arrays.asList(args).contains("--cpu-smoke");
        List<String> rest = new ArrayList<>(Arrays.asList(args));
        rest.remove("--cpu-smoke");
        Path outDir = Path.of(rest.isEmpty() ? "out" : rest.get(0));
        GpuCheck check = new GpuCheck(System.out, smoke);
        int code = check.run();
        Files.createDirectories(outDir);
        Files.write(outDir.resolve("gpu-check.txt"), check.lines, StandardCharsets.UTF_8);
        System.exit(code);
    }

    private void say(String format, Object... args) {
        String line = String.format(Locale.ROOT, format, args);
        lines.add(line);
        out.println(line);
        out.flush();
    }

    private int run() {
        say("tenmin GPU check, %s, JDK %s", Instant.now(), Runtime.version());
        LibTorch lib = LibTorch.locateAndLoad();
        say("%s", lib.describe());
        say("math: %s", lib.mathMode());
        for (String r : lib.rejected()) {
            say("  (rejected: %s)", r);
        }
        if (lib.cudaDeviceCount() == 0 && !smoke) {
            say("NO GPU: %s", lib.cudaProblem());
            return 3;
        }
        Device device = smoke ? Device.CPU : Device.cuda(0);
        boolean ok = true;
        try (TorchBackend gpu = new TorchBackend(lib, device)) {
            long[] mem = gpu.deviceMemoryInfo();
            if (mem != null) {
                say("cuda:0 memory: %.1f GiB total, %.1f GiB free", mem[1] / 1073741824.0, mem[0] / 1073741824.0);
            }
            ok &= parity(lib, device);
            ok &= uploadsInOrder(gpu);
            hostCost(gpu);
            benchmark(gpu);
            mem = gpu.deviceMemoryInfo();
            if (mem != null) {
                say("cuda:0 memory after the benchmark: %.1f GiB used (including libtorch's allocator cache)",
                        (mem[1] - mem[0]) / 1073741824.0);
            }
        }
        say("RESULT: %s", ok ? "parity OK" : "parity FAILED");
        return ok ? 0 : 1;
    }

    private boolean parity(LibTorch lib, Device device) {
        Backend cpu = BackendParity.cpuBackend().orElse(null);
        if (cpu == null) {
            say("parity: SKIPPED, the cpu backend is not in this jar");
            return true;
        }
        boolean ok = true;
        try (cpu) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                double tol = dtype == DType.F32 ? F32_TOL : BF16_TOL;
                try (TorchBackend gpu = new TorchBackend(lib, device)) {
                    ok &= report("parity " + dtype + " (AUTO attention)", BackendParity.compare(cpu, gpu, dtype, tol));
                }
                if (smoke) {
                    continue;
                }
                for (AttentionKernel k : new AttentionKernel[] {AttentionKernel.CUDNN, AttentionKernel.FLASH,
                        AttentionKernel.EFFICIENT}) {
                    if (dtype == DType.F32 && k != AttentionKernel.EFFICIENT) {
                        continue; // cuDNN and flash attention take bf16/fp16 only
                    }
                    try (TorchBackend gpu = new TorchBackend(lib, Device.cuda(0), k)) {
                        ok &= report("parity " + dtype + " attention " + k,
                                BackendParity.compare(cpu, gpu, dtype, tol, name -> name.startsWith("attention")));
                    }
                }
            }
        }
        return ok;
    }

    /**
     * Uploads that do not wait for the device (page-locked, {@code non_blocking}: {@code Aten.uploadAsync}): behind a
     * queue of large products, 64 tensors are uploaded from one host array rewritten before each upload, in fp32 and
     * converted to bf16, and one device scalar of each kind; every tensor must hold the values of its own upload.
     */
    private boolean uploadsInOrder(TorchBackend gpu) {
        int n = smoke ? 1 << 10 : 1 << 22;
        int side = smoke ? 64 : 4096;
        int bad = 0;
        try (Scope s = Scope.root(gpu, "uploads")) {
            Generator gen = new Generator(5);
            Tensor a = s.randn(Shape.of(side, side), DType.BF16, gen);
            for (int i = 0; i < 8; i++) {
                gpu.matmul(s, a, a, false, false).close();                 // keeps the device busy while we upload
            }
            float[] host = new float[n];
            List<Tensor> up = new ArrayList<>();
            for (int k = 0; k < 64; k++) {
                Arrays.fill(host, k + 0.5f);
                up.add(s.fromHost(host, Shape.of(n), k % 2 == 0 ? DType.F32 : DType.BF16));
            }
            for (int k = 0; k < up.size(); k++) {
                float[] got = up.get(k).toHost();
                for (float v : got) {
                    if (v != k + 0.5f) {
                        bad++;
                        break;
                    }
                }
            }
            Tensor big = s.full(Shape.of(3), DType.F32, 1e6);
            float[] clamped = gpu.clamp(s, big, -2.5, 7.25).toHost();
            if (clamped[0] != 7.25f) {
                bad++;
            }
        }
        say("== uploads without a device wait: 64 tensors of %d values behind queued work, %d wrong%s", n, bad,
                bad == 0 ? "" : " (FAILED)");
        return bad == 0;
    }

    private boolean report(String title, List<BackendParity.Result> results) {
        long bad = results.stream().filter(r -> !r.ok()).count();
        say("== %s: %d outputs, %d outside tolerance", title, results.size(), bad);
        for (BackendParity.Result r : results) {
            say("  %s", r);
        }
        return bad == 0;
    }

    // ---- micro-benchmark ---------------------------------------------------------------------------

    private interface Body {
        void run(Scope s);
    }

    /** Median milliseconds of {@code iters} synchronized runs after {@code warmup} runs; each run in its own scope. */
    private static double time(Backend b, Scope parent, int warmup, int iters, Body body) {
        for (int i = 0; i < warmup; i++) {
            try (Scope s = parent.child("warmup")) {
                body.run(s);
            }
        }
        b.synchronize();
        double[] ms = new double[iters];
        for (int i = 0; i < iters; i++) {
            try (Scope s = parent.child("iter")) {
                long t0 = System.nanoTime();
                body.run(s);
                b.synchronize();
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        Arrays.sort(ms);
        return ms[iters / 2];
    }

    private void line(String what, double ms, double flop) {
        say("  %-46s %8.3f ms  %7.1f TFLOP/s", what, ms, flop / ms / 1e9);
    }

    /**
     * What the host pays per engine op when the device work is negligible (tiny bf16 tensors): the time to issue
     * {@code n} ops without waiting (the pace of a host-bound model) and, for comparison, with a synchronize after
     * each. On a GPU every micro-batch of the recipe issues about 43,000 such calls, so this is the floor of the
     * host's share.
     */
    private void hostCost(TorchBackend gpu) {
        int n = smoke ? 200 : 2000;
        say("== host cost per op (tiny bf16 tensors; median of 5 batches of %d ops; issue only / synchronized each)", n);
        try (Scope s = Scope.root(gpu, "host cost")) {
            Generator gen = new Generator(7);
            DType bf = DType.BF16;
            Tensor a = s.randn(Shape.of(8, 64), bf, gen);
            Tensor b = s.randn(Shape.of(8, 64), bf, gen);
            Tensor w = s.randn(Shape.of(64, 64), bf, gen);
            Tensor bias = s.randn(Shape.of(64), bf, gen);
            Tensor img = s.randn(Shape.of(2, 64, 4, 4), bf, gen);
            Tensor cw = s.randn(Shape.of(64, 64, 1, 1), bf, gen);
            Tensor gamma = s.randn(Shape.of(64), bf, gen);
            Tensor q = s.randn(Shape.of(2, 2, 16, 64), bf, gen);
            Tensor f32 = s.randn(Shape.of(8, 64), DType.F32, gen);
            hostLine(gpu, s, n, "add", sc -> gpu.add(sc, a, b, 1.0));
            hostLine(gpu, s, n, "mul", sc -> gpu.mul(sc, a, b));
            hostLine(gpu, s, n, "silu", sc -> gpu.silu(sc, a));
            hostLine(gpu, s, n, "cast f32 -> bf16", sc -> gpu.cast(sc, f32, bf));
            hostLine(gpu, s, n, "reshape (view)", sc -> gpu.reshape(sc, a, Shape.of(64, 8)));
            hostLine(gpu, s, n, "permute", sc -> gpu.permute(sc, a, 1, 0));
            hostLine(gpu, s, n, "matmul", sc -> gpu.matmul(sc, a, w, false, true));
            hostLine(gpu, s, n, "linear (bias)", sc -> gpu.linear(sc, a, w, bias));
            hostLine(gpu, s, n, "conv 1x1", sc -> gpu.convolution(sc, img, cw, null, 1, 0));
            hostLine(gpu, s, n, "group norm", sc -> gpu.groupNorm(sc, img, gamma, bias, 32, 1e-5));
            hostLine(gpu, s, n, "layer norm", sc -> gpu.layerNorm(sc, a, gamma, bias, 1e-5));
            hostLine(gpu, s, n, "attention", sc -> gpu.attention(sc, q, q, q, false, 0.125));
            hostLine(gpu, s, n, "sum", sc -> gpu.sum(sc, a, new int[] {1}, false));
        } catch (RuntimeException e) {
            say("  host cost: FAILED %s", e.getMessage());
        }
    }

    private void hostLine(TorchBackend gpu, Scope parent, int n, String what, Body body) {
        double[] issue = new double[5];
        double[] synced = new double[5];
        for (int rep = -1; rep < 5; rep++) {
            try (Scope sc = parent.child("issue")) {
                gpu.synchronize();
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    body.run(sc);
                }
                long t1 = System.nanoTime();
                gpu.synchronize();
                if (rep >= 0) {
                    issue[rep] = (t1 - t0) / 1e3 / n;
                }
            }
            try (Scope sc = parent.child("synced")) {
                long t0 = System.nanoTime();
                for (int i = 0; i < n / 4; i++) {
                    body.run(sc);
                    gpu.synchronize();
                }
                if (rep >= 0) {
                    synced[rep] = (System.nanoTime() - t0) / 1e3 / (n / 4);
                }
            }
        }
        Arrays.sort(issue);
        Arrays.sort(synced);
        say("  %-22s %7.2f us issued  %7.2f us synchronized", what, issue[2], synced[2]);
    }

    private void benchmark(TorchBackend gpu) {
        int it = sizes.iters();
        int warm = smoke ? 1 : 5;
        say("== micro-benchmark (bf16, median of %d after %d warm-up runs, synchronized)", it, warm);
        try (Scope s = Scope.root(gpu, "bench")) {
            Generator gen = new Generator(1);
            DType bf = DType.BF16;
            int ch = sizes.convChannels();
            int side = sizes.convSide();
            Tensor x = s.randn(Shape.of(2, ch, side, side), bf, gen);
            Tensor w = gpu.affine(s, s.randn(Shape.of(ch, ch, 3, 3), bf, gen), 0.02, 0);
            Tensor dy = s.randn(Shape.of(2, ch, side, side), bf, gen);
            double convFlop = 2.0 * 2 * ch * ch * 9 * side * side;
            line("conv3x3 " + ch + "->" + ch + " " + side + "x" + side + " N2 forward",
                    time(gpu, s, warm, it, sc -> gpu.convolution(sc, x, w, null, 1, 1)), convFlop);
            line("conv3x3 backward (dX, dW)", time(gpu, s, warm, it, sc -> gpu.convolutionBackward(sc, dy, x, w, 1, 1,
                    new Backend.OutputMask(true, true, false))), 2 * convFlop);
            // GEMM first: a kernel failing below can leave the CUDA context unusable
            int g = sizes.gemm();
            Tensor a = s.randn(Shape.of(g, g), bf, gen);
            Tensor b = s.randn(Shape.of(g, g), bf, gen);
            line("GEMM " + g + "^3", time(gpu, s, warm, it, sc -> gpu.matmul(sc, a, b, false, false)), 2.0 * g * g * g);
            int seq = sizes.seq();
            Shape qShape = Shape.of(2, 10, seq, 64);
            double attnFlop = 4.0 * 2 * 10 * (double) seq * seq * 64;
            AttentionKernel[] kinds = smoke ? new AttentionKernel[] {AttentionKernel.AUTO}
                    : new AttentionKernel[] {AttentionKernel.CUDNN, AttentionKernel.FLASH, AttentionKernel.EFFICIENT};
            for (AttentionKernel kind : kinds) {
                try (TorchBackend kb = new TorchBackend(gpu.libTorch(), gpu.device(), kind);
                     Scope ks = Scope.root(kb, "attention")) {
                    Tensor kq = ks.randn(qShape, bf, new Generator(2));
                    Tensor kk = ks.randn(qShape, bf, new Generator(3));
                    Tensor kv = ks.randn(qShape, bf, new Generator(4));
                    Tensor kd = ks.randn(qShape, bf, new Generator(5));
                    line("SDPA " + kind + " B2 H10 S" + seq + " D64 forward",
                            time(kb, ks, warm, it, sc -> kb.attention(sc, kq, kk, kv, false, 0.125)), attnFlop);
                    AttentionResult fwd = kb.attention(ks, kq, kk, kv, false, 0.125);
                    line("SDPA " + kind + " backward", time(kb, ks, warm, it,
                            sc -> kb.attentionBackward(sc, kd, kq, kk, kv, fwd, false, 0.125)), 2.5 * attnFlop);
                } catch (RuntimeException e) {
                    say("  SDPA %s: FAILED %s", kind, e.getMessage());
                }
            }
        }
    }
}
