package tenmin.train;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeSet;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.core.WithProperty;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.torch.LibTorch;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.parity.GpuCheck;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.lora.LoConDropout;
import tenmin.lora.LoConNetwork;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.lora.LoConTarget;
import tenmin.models.sdxl.Unet;
import tenmin.models.sdxl.UnetConfig;
import tenmin.train.optim.ClybW;
import tenmin.train.optim.DeviceClybW;
import tenmin.train.optim.DeviceOptimizerParity;

/**
 * The model-level part of the one-call GPU check ({@code scripts/gpu-all.sh}): one LoCon training step of a fixture
 * U-Net (forward, loss Σ(eps·R), backward into the input and every LoCon tensor) on the torch backend on CUDA
 * against the pure-Java {@code cpu} backend, on the fixture's own inputs and LoCon:
 * <ul>
 *   <li>fp32: every output within 1e-4 of the cpu backend (issue 4; LoCon gradients with the fixtures' term
 *       1e-5·max|g| for entries that are analytically zero), TF32 off ({@link LibTorch.MathMode#EXACT});</li>
 *   <li>bf16 (weights and activations; LoCon values and gradients fp32): every tensor within issue 4's 2e-2 of its
 *       largest value (LoCon gradients: of the largest LoCon gradient) from the fp32 step, or within 3 times the
 *       cpu backend's own bf16 distance plus 1e-3 (the cpu backend rounds only each op's result, the GPU's fused
 *       kernels also inside);</li>
 *   <li>the same bf16 step with every LoCon layer merged into its weight and the feed-forward projections split in
 *       value and gate products (the fixture's layers are too small for {@code MergedLoraOp#pays}; the recipe's
 *       full-size layers all merge), once with the convolutions' LoCon gradients through their branches and once
 *       projected from their weight gradients (the recipe's 320-channel ones): the same bounds;</li>
 *   <li>a LoCon whose delta is 1e-4 of each weight, as early in training: the GPU's bf16 LoCon gradients within
 *       20 % of the fp32 bypass form per tensor, 5 % overall (issue 4's
 *       precision check; see {@code LoConSmallDeltaTorchTest} for what bf16 costs on the tiny model);</li>
 *   <li>the optimizer step on the device ({@link DeviceClybW}) against the host ClybW and LodeW with the global clip,
 *       three steps on LoCon-like parameters: within 1e-4 ({@link DeviceOptimizerParity}).</li>
 * </ul>
 * Exit code 0 when all pass, 1 when one fails, 3 without a GPU (unless {@code --cpu-smoke}: then the candidate is the
 * CPU libtorch, to try the plumbing). The fixture folder may be a packed copy ({@code --pack}): the fixture's U-Net
 * weights alone, in fp16 (both backends load the same values), the LoCon and the inputs, small enough to travel to
 * a device machine with the Java runtime.
 *
 * <pre>
 * java -cp tenmin.jar tenmin.train.GpuStepParity MODEL_DIR OUT_FILE [--cpu-smoke]
 * java -cp tenmin.jar tenmin.train.GpuStepParity --pack FIXTURE_MODEL_DIR PACKED_DIR
 * </pre>
 */
public final class GpuStepParity {
    private static final String CHECKPOINT = "checkpoint.safetensors";
    private static final String LOCON = "locon.safetensors";
    private static final String IO = "unet-io.safetensors";
    private static final String CONFIG = "config.json";

    private final List<String> lines = new ArrayList<>();
    private final PrintStream out;
    private boolean ok = true;

    private GpuStepParity(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) throws IOException {
        if (args.length == 3 && args[0].equals("--pack")) {
            pack(Path.of(args[1]), Path.of(args[2]));
            return;
        }
        if (args.length < 2) {
            System.err.println("usage: GpuStepParity MODEL_DIR OUT_FILE [--cpu-smoke] [--attention AUTO|CUDNN|FLASH|EFFICIENT]"
                    + " | --pack FIXTURE_MODEL_DIR PACKED_DIR");
            System.exit(2);
        }
        List<String> rest = new ArrayList<>(List.of(args).subList(2, args.length));
        boolean smoke = rest.remove("--cpu-smoke");
        TorchBackend.AttentionKernel kernel = TorchBackend.AttentionKernel.AUTO;
        int at = rest.indexOf("--attention");
        if (at >= 0 && at + 1 < rest.size()) {
            kernel = TorchBackend.AttentionKernel.valueOf(rest.get(at + 1).toUpperCase(Locale.ROOT));
        }
        GpuStepParity p = new GpuStepParity(System.out);
        int code = p.run(Path.of(args[0]), smoke, kernel);
        Path report = Path.of(args[1]);
        if (report.getParent() != null) {
            Files.createDirectories(report.getParent());
        }
        Files.write(report, p.lines, StandardCharsets.UTF_8);
        System.exit(code);
    }

    /**
     * Copies a fixture model folder for a device machine: config, LoCon and inputs as they are, and from the
     * single-file checkpoint only the U-Net's tensors, converted to fp16 (32 MB of fp32 become 16).
     */
    public static void pack(Path from, Path to) throws IOException {
        Files.createDirectories(to);
        for (String f : List.of(CONFIG, LOCON, IO)) {
            Files.copy(from.resolve(f), to.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        try (SafetensorsFile ckpt = SafetensorsFile.open(from.resolve(CHECKPOINT))) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String key : ckpt.names()) {
                if (key.startsWith(Unet.KEY_PREFIX)) {
                    w.addFloats(key, StDType.F16, ckpt.info(key).shape(), ckpt.readFloats(key));
                    ckpt.release(key);
                }
            }
            w.write(to.resolve(CHECKPOINT));
        }
    }

    /**
     * The optimizer step on the device ({@link DeviceClybW}: clip and ClybW / LodeW on flat buffers) against the host
     * {@link tenmin.train.optim.ClybW} and clip on the same gradients, three steps: within 1e-4 of each tensor's largest
     * value (float rounding of other reduction orders; 1e-5 on the CPU libtorch in {@code DeviceClybWTest}).
     */
    private void optimizerParity(Backend backend) {
        for (boolean lodeW : new boolean[] {false, true}) {
            DeviceOptimizerParity.Result r = DeviceOptimizerParity.compare(backend,
                    lodeW ? ClybW.Hyper.LODEW : ClybW.Hyper.CLYBW, lodeW, 11);
            boolean pass = r.within(1e-4);
            ok &= pass;
            say("optimizer step on the device, %s vs the host: values %.2e, moments %.2e, gradient norm %.2e of the"
                    + " host's (bound 1e-4; worst %s) %s", lodeW ? "LodeW" : "ClybW", r.values(), r.moments(), r.norm(),
                    r.worst(), pass ? "OK" : "FAIL");
        }
    }

    private void say(String format, Object... args) {
        String line = String.format(Locale.ROOT, format, args);
        lines.add(line);
        out.println(line);
        out.flush();
    }

    private int run(Path dir, boolean smoke, TorchBackend.AttentionKernel kernel) {
        LibTorch lib = LibTorch.locateAndLoad();
        say("tenmin step parity (fixture U-Net + LoCon, one training step), %s", dir);
        say("%s", lib.describe());
        say("math: %s; attention %s", lib.mathMode(), kernel);
        if (lib.cudaDeviceCount() == 0 && !smoke) {
            say("NO GPU: %s", lib.cudaProblem());
            return 3;
        }
        Device device = smoke ? Device.CPU : Device.cuda(0);
        // the fp32 step always with AUTO attention: cuDNN and flash attention take 16-bit tensors only
        try (CpuBackend cpu = new CpuBackend(); TorchBackend torch32 = new TorchBackend(lib, device);
             TorchBackend torch = new TorchBackend(lib, device, kernel)) {
            TreeSet<String> cases = new TreeSet<>();
            try (SafetensorsFile io = SafetensorsFile.open(dir.resolve(IO))) {
                for (String key : io.names()) {
                    if (key.endsWith(".lora.eps")) {
                        cases.add(key.substring(0, key.length() - ".lora.eps".length()));
                    }
                }
            }
            for (String c : cases) {
                Map<String, float[]> ref = step(cpu, dir, c, DType.F32, null);
                compareFp32(c, ref, step(torch32, dir, c, DType.F32, null));
                compareBf16(c, ref, step(cpu, dir, c, DType.BF16, null), step(torch, dir, c, DType.BF16, null));
                // the fixture's layers are too small for merging to pay: the same with every LoCon merged (and the
                // feed-forward projections split), as the recipe's full-size U-Net runs
                compareBf16(c + ", every LoCon merged", ref, mergingAll(false, () -> step(cpu, dir, c, DType.BF16, null)),
                        mergingAll(false, () -> step(torch, dir, c, DType.BF16, null)));
                compareBf16(c + ", every LoCon merged, convolutions' gradients projected", ref,
                        mergingAll(true, () -> step(cpu, dir, c, DType.BF16, null)),
                        mergingAll(true, () -> step(torch, dir, c, DType.BF16, null)));
            }
            // LyCORIS's dropouts: keep-masks drawn on the device from the cpu backend's counter stream, bypass branches
            LoConDropout dropout = new LoConDropout(0.2, 0.3, 0.1);
            compareFp32(cases.first() + ", LoCon dropout", step(cpu, dir, cases.first(), DType.F32, null, dropout),
                    step(torch32, dir, cases.first(), DType.F32, null, dropout));
            smallDelta(cpu, torch, dir, cases.first());
            optimizerParity(torch32);
        }
        say("RESULT: %s", ok ? "step parity OK" : "step parity FAILED");
        return ok ? 0 : 1;
    }

    /**
     * {@code body} with every LoCon layer of a training step merged ({@link Functional#MERGE_ALWAYS_PROPERTY}) and, with
     * {@code project}, every merged convolution's LoCon gradients projected ({@link Functional#PROJECT_LORA_PROPERTY});
     * without it, none projected.
     */
    private static <T> T mergingAll(boolean project, java.util.function.Supplier<T> body) {
        return WithProperty.with(Functional.MERGE_ALWAYS_PROPERTY, "true",
                () -> WithProperty.with(Functional.PROJECT_LORA_PROPERTY, project ? "always" : "0", body));
    }

    /** fp32: max|a-b| <= 1e-4·max|ref| (+ 1e-5·G for LoCon gradients, G the largest LoCon gradient). */
    private void compareFp32(String c, Map<String, float[]> ref, Map<String, float[]> got) {
        double g = maxLoconGrad(ref);
        double worst = 0;
        String worstKey = "";
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            double maxRef = maxAbs(e.getValue());
            double err = maxDiff(e.getValue(), got.get(e.getKey()));
            double bound = 1e-4 * maxRef + (e.getKey().startsWith("grad.lora_") ? 1e-5 * g : 0);
            if (err / bound > worst) {
                worst = err / bound;
                worstKey = e.getKey();
            }
            if (!(err <= bound)) {
                ok = false;
                say("  FAIL fp32 %s %s: max|diff| %.3g > %.3g", c, e.getKey(), err, bound);
            }
        }
        say("== fp32 %s: %d tensors (eps, loss, grad.x, LoCon gradients) within 1e-4 of max|ref| (+1e-5 max|g| for"
                + " LoCon gradients); worst error/bound %.3g (%s)", c, ref.size(), worst, worstKey);
    }

    /**
     * bf16: each backend against the fp32 step. A tensor passes when the GPU is within issue 4's 2e-2 of max|ref|
     * (LoCon gradients: of the largest LoCon gradient) or within 3 times the cpu backend's own bf16 distance (+1e-3):
     * through a whole U-Net step bf16 alone moves some tensors more than 2e-2 on either backend, and the cpu backend
     * rounds only each op's result while the GPU's fused kernels also round inside (flash and cuDNN attention
     * multiply bf16 probabilities), as PyTorch, and so the reference trainer, do.
     */
    private void compareBf16(String c, Map<String, float[]> ref, Map<String, float[]> cpuBf16, Map<String, float[]> gpuBf16) {
        double g = maxLoconGrad(ref);
        double worstRatio = 0;
        double worstErr = 0;
        String worstKey = "";
        int aboveThree = 0;
        double errSq = 0;
        double cpuSq = 0;
        double refSq = 0;
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            if (e.getKey().equals("loss")) {
                continue;   // Σ(eps·R) cancels: its relative error says nothing eps does not
            }
            boolean lora = e.getKey().startsWith("grad.lora_");
            double scale = lora ? g : maxAbs(e.getValue());
            double errCpu = maxDiff(e.getValue(), cpuBf16.get(e.getKey())) / scale;
            double errGpu = maxDiff(e.getValue(), gpuBf16.get(e.getKey())) / scale;
            worstRatio = Math.max(worstRatio, errGpu / Math.max(errCpu, 1e-3));
            if (errGpu > 3 * errCpu + 1e-3) {
                aboveThree++;
            }
            if (errGpu > worstErr) {
                worstErr = errGpu;
                worstKey = e.getKey();
            }
            if (lora) {
                double d = normDiff(e.getValue(), gpuBf16.get(e.getKey()));
                double dc = normDiff(e.getValue(), cpuBf16.get(e.getKey()));
                double n = norm(e.getValue());
                errSq += d * d;
                cpuSq += dc * dc;
                refSq += n * n;
            }
            if (!(errGpu <= GpuCheck.BF16_TOL || errGpu <= 3 * errCpu + 1e-3)) {
                ok = false;
                say("  FAIL bf16 %s %s: GPU %.3g of max|ref|, over %.3g and over 3x the cpu backend's %.3g", c,
                        e.getKey(), errGpu, GpuCheck.BF16_TOL, errCpu);
            }
        }
        say("== bf16 %s: worst GPU error %.3g of max|ref| (%s); GPU/cpu-backend distance ratio up to %.2f, above 3 for"
                + " %d tensors; each within %.3g or 3x the cpu backend; LoCon gradients |bf16 - fp32| / |fp32| over all:"
                + " GPU %.3g, cpu backend %.3g",
                c, worstErr, worstKey, worstRatio, aboveThree, GpuCheck.BF16_TOL, Math.sqrt(errSq / refSq),
                Math.sqrt(cpuSq / refSq));
    }

    /** Issue 4's precision check on the device: a 1e-4 delta's bf16 gradients against the fp32 bypass form. */
    private void smallDelta(Backend cpu, Backend gpu, Path dir, String c) {
        Map<String, float[]> values = smallDeltaValues(cpu, dir);
        Map<String, float[]> ref = loconGrads(step(cpu, dir, c, DType.F32, values));
        Map<String, float[]> got = loconGrads(step(gpu, dir, c, DType.BF16, values));
        Map<String, float[]> cpuBf16 = loconGrads(step(cpu, dir, c, DType.BF16, values));
        double[] norms = ref.values().stream().mapToDouble(GpuStepParity::norm).sorted().toArray();
        double median = norms[norms.length / 2];
        double errSq = 0;
        double cpuSq = 0;
        double refSq = 0;
        double worst = 0;
        String worstKey = "";
        int aboveCpu = 0;
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            double n = norm(e.getValue());
            if (n < 1e-4 * median) {
                continue;   // analytically zero (see LoConSmallDeltaTorchTest): bf16 noise only
            }
            double err = normDiff(e.getValue(), got.get(e.getKey()));
            double errCpu = normDiff(e.getValue(), cpuBf16.get(e.getKey()));
            errSq += err * err;
            cpuSq += errCpu * errCpu;
            refSq += n * n;
            if (err / n > worst) {
                worst = err / n;
                worstKey = e.getKey();
            }
            if (err > 1.5 * errCpu + 5e-3 * n) {
                aboveCpu++;
            }
            if (!(err / n <= 0.2)) {
                ok = false;
                say("  FAIL 1e-4 delta %s: GPU bf16 %.3g of the fp32 gradient (bound 0.2; cpu backend bf16 %.3g)",
                        e.getKey(), err / n, errCpu / n);
            }
        }
        double total = Math.sqrt(errSq / refSq);
        ok &= total <= 0.05;
        say("== 1e-4 delta LoCon, bf16 gradients vs the fp32 bypass form: %.3g overall (bound 0.05; cpu backend bf16"
                + " %.3g), worst %.3g (%s, bound 0.2); %d tensors above 1.5x the cpu backend's error%s", total,
                Math.sqrt(cpuSq / refSq), worst, worstKey, aboveCpu, total <= 0.05 ? "" : "  FAIL");
    }

    /** LyCORIS-initialised down, random up scaled so that ‖scale·up·down‖ = 1e-4 ‖W‖ per module (seeded). */
    private static Map<String, float[]> smallDeltaValues(Backend cpu, Path dir) {
        Map<String, float[]> values = new LinkedHashMap<>();
        SplittableRandom rng = new SplittableRandom(20241126);
        try (Scope model = Scope.root(cpu, "model");
             SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve(CHECKPOINT))) {
            Unet unet = Unet.fromCheckpoint(ckpt, UnetConfig.fromConfigFile(dir.resolve(CONFIG)), model, DType.F32);
            for (LoConTarget t : LoConPreset.unet(unet.layers(), unet.moduleClasses(), ranks(dir))) {
                int r = t.rank();
                int cols = (int) (t.downShape().numel() / r);
                int outs = t.out();
                float[] down = new float[r * cols];
                double bound = 1 / Math.sqrt(cols);
                for (int i = 0; i < down.length; i++) {
                    down[i] = (float) rng.nextDouble(-bound, bound);
                }
                double[] up = new double[outs * r];
                for (int i = 0; i < up.length; i++) {
                    up[i] = rng.nextGaussian();
                }
                double scale = t.alpha() / r;
                double deltaSq = 0;
                for (int o = 0; o < outs; o++) {
                    for (int col = 0; col < cols; col++) {
                        double s = 0;
                        for (int k = 0; k < r; k++) {
                            s += up[o * r + k] * down[k * cols + col];
                        }
                        deltaSq += scale * scale * s * s;
                    }
                }
                double factor = 1e-4 * norm(t.layer().weight().toHost()) / Math.sqrt(deltaSq);
                float[] upScaled = new float[up.length];
                for (int i = 0; i < up.length; i++) {
                    upScaled[i] = (float) (up[i] * factor);
                }
                values.put(t.name() + ".lora_down.weight", down);
                values.put(t.name() + ".lora_up.weight", upScaled);
            }
        }
        return values;
    }

    /** The fixture's LoCon ranks ({@code config.json} "lora"), or the recipe's when absent. */
    private static LoConRanks ranks(Path dir) {
        try {
            var root = new com.fasterxml.jackson.databind.ObjectMapper().readTree(Files.readString(dir.resolve(CONFIG)));
            var l = root.get("lora");
            if (l == null) {
                return TrainBenchmark.Setup.RECIPE_RANKS;
            }
            return new LoConRanks(l.get("linear_rank").intValue(), l.get("linear_alpha").doubleValue(),
                    l.get("conv_rank").intValue(), l.get("conv_alpha").doubleValue());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /**
     * One forward + backward from Σ(eps·R) on case {@code c}: eps, loss, grad.x and grad.&lt;LoCon key&gt;. The LoCon is
     * the fixture's file, or {@code values} by tensor name when given.
     */
    private static Map<String, float[]> step(Backend backend, Path dir, String c, DType dtype, Map<String, float[]> values) {
        return step(backend, dir, c, dtype, values, LoConDropout.NONE);
    }

    /** As above, the LoCon with {@code dropout}, its draws from a fixed key. */
    private static Map<String, float[]> step(Backend backend, Path dir, String c, DType dtype, Map<String, float[]> values,
                                             LoConDropout dropout) {
        Map<String, float[]> out = new LinkedHashMap<>();
        UnetConfig config = UnetConfig.fromConfigFile(dir.resolve(CONFIG));
        try (Scope model = Scope.root(backend, "model");
             SafetensorsFile ckpt = SafetensorsFile.open(dir.resolve(CHECKPOINT));
             SafetensorsFile io = SafetensorsFile.open(dir.resolve(IO))) {
            Unet unet = Unet.fromCheckpoint(ckpt, config, model, dtype);
            List<LoConTarget> targets = LoConPreset.unet(unet.layers(), unet.moduleClasses(), ranks(dir));
            LoConNetwork net;
            if (values == null) {
                net = LoConNetwork.load(dir.resolve(LOCON), targets, model);
            } else {
                net = LoConNetwork.create(targets, model, new Generator(1));
                for (Tensor p : net.parameters()) {
                    backend.copyInto(p, model.fromHost(values.get(p.name()), p.shape(), DType.F32));
                }
            }
            net.setDropout(dropout);
            try (Scope step = model.child("step")) {
                Functional f = Functional.training(step)
                        .withRandomness(dropout.any() ? tenmin.engine.autograd.Randomness.of(7, 0) : null);
                Tensor x = input(io, c + ".x", step).requireGrad();
                Tensor eps = unet.forward(f, x, input(io, c + ".timesteps", step), input(io, c + ".context", step),
                        input(io, c + ".y", step));
                Tensor loss = f.sum(f.mul(eps, input(io, c + ".R", step)));
                out.put("eps", eps.toHost());
                out.put("loss", loss.toHost());
                f.backward(loss);
                out.put("grad.x", x.grad().toHost());
                for (Tensor p : net.parameters()) {
                    out.put("grad." + p.name(), p.grad().toHost());
                }
            }
        }
        return out;
    }

    private static Tensor input(SafetensorsFile io, String key, Scope s) {
        Shape shape = Shape.of(io.info(key).shape());
        return io.info(key).dtype() == StDType.I64 ? s.backend().fromHost(s, io.readLongs(key), shape)
                : s.fromHost(io.readFloats(key), shape, DType.F32);
    }

    private static Map<String, float[]> loconGrads(Map<String, float[]> all) {
        Map<String, float[]> out = new LinkedHashMap<>();
        all.forEach((k, v) -> {
            if (k.startsWith("grad.lora_")) {
                out.put(k, v);
            }
        });
        return out;
    }

    private static double maxLoconGrad(Map<String, float[]> m) {
        double g = 0;
        for (Map.Entry<String, float[]> e : m.entrySet()) {
            if (e.getKey().startsWith("grad.lora_")) {
                g = Math.max(g, maxAbs(e.getValue()));
            }
        }
        return g;
    }

    private static double maxAbs(float[] v) {
        double m = 0;
        for (float x : v) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            m = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(m, d);
        }
        return m;
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) {
            s += (double) x * x;
        }
        return Math.sqrt(s);
    }

    private static double normDiff(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - b[i];
            s += d * d;
        }
        return Double.isNaN(s) ? Double.POSITIVE_INFINITY : Math.sqrt(s);
    }
}
