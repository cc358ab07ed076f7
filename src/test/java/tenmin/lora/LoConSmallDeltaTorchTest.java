package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.autograd.Functional;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchTesting;
import tenmin.formats.SafetensorsFile;
import tenmin.models.sdxl.Unet;
import tenmin.models.sdxl.UnetConfig;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;

/**
 * Issue 4's precision check: a LoCon whose delta is 1e-4 of each wrapped weight (Frobenius norms), as early in
 * training, on the fixture U-Net at the recipe's ranks. Its gradients from the bf16 path on the torch backend
 * (frozen weights and activations bf16, LoCon values fp32 cast to bf16 inside the bypass branch, products
 * accumulated in fp32, loss fp32) are compared with the bypass form in fp32 on the cpu backend, tensor by tensor
 * (norm of the difference over the norm of the fp32 gradient).
 *
 * <p>Measured on tiny-a: 4.2 % on average, 6.9 % at worst; the cpu backend, which rounds only each op's result
 * to bf16, is 4.4 % / 7.3 % from the same fp32 gradients. So the error is what bf16 activations cost on this
 * 32-channel model, not the LoCon formulation, and issue 4's 2e-2 (its bound for single ops) does not hold for
 * gradients through a whole bf16 network. The bounds: each gradient within 10 % of its norm (the reference
 * stack's merged formulation was 40 % off) and within 1.5 times the cpu backend's bf16 error (plus 0.5 %), 5 %
 * over all; gradients that are analytically zero carry the same bf16 noise as on the cpu backend. A 1e-4 delta is below half a bf16 ulp of
 * the weight (2^-9), so a merged bf16 weight does not see it, nor does the bf16 sum of layer and branch.
 *
 * <p>Training folds the LoCon into the weights for the layers' products where that pays
 * ({@code Functional#loraLinear}, {@code #loraConv2d}; the LoCon's gradients still come from its branch's hidden
 * product, unlike the reference stack's merged formulation, which projects a bf16 full-weight gradient). Measured
 * here (2026-11-26): 3.7 % overall, 6.7 % worst, as with the branches ({@code TENMIN_LORA_MERGE=0}: 3.7 %, 6.8 %).
 */
@Tag("torch")
class LoConSmallDeltaTorchTest {
    private static final double DELTA = 1e-4;
    private static CpuBackend cpu;
    private static TorchBackend torch;

    @BeforeAll
    static void start() {
        torch = new TorchBackend(TorchTesting.libTorchOrSkip(), Device.CPU);
        cpu = new CpuBackend();
    }

    @AfterAll
    static void stop() {
        if (cpu != null) {
            cpu.close();
        }
        if (torch != null) {
            torch.close();
        }
    }

    @Test
    void gradientsOfATinyDeltaOnTheBf16PathMatchTheFp32BypassForm() {
        ModelFixture m = ModelFixture.of(Fixtures.modelDirs().getFirst());
        Map<String, float[]> values = smallDelta(m);
        Map<String, float[]> ref = gradients(cpu, m, DType.F32, values);
        Map<String, float[]> torchBf16 = gradients(torch, m, DType.BF16, values);
        Map<String, float[]> cpuBf16 = gradients(cpu, m, DType.BF16, values);
        double[] norms = ref.values().stream().mapToDouble(LoConSmallDeltaTorchTest::norm).sorted().toArray();
        double median = norms[norms.length / 2];
        double sumSqErr = 0;
        double sumSqRef = 0;
        double worst = 0;
        String worstName = "";
        List<String> bad = new ArrayList<>();
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            String name = e.getKey();
            double refNorm = norm(e.getValue());
            double errTorch = norm(diff(torchBf16.get(name), e.getValue()));
            double errCpu = norm(diff(cpuBf16.get(name), e.getValue()));
            if (refNorm < 1e-4 * median) {
                // Analytically zero: a per-channel constant added before a GroupNorm with one channel per group
                // (the tiny model's level 0) cancels in exact arithmetic, not after bf16 rounding; only the noise
                // of that rounding is left, which must be the cpu backend's.
                if (!(errTorch <= 2 * errCpu + 1e-3 * median)) {
                    bad.add(String.format(Locale.ROOT, "%s: %.3g on a zero gradient (cpu backend bf16 %.3g)", name,
                            errTorch, errCpu));
                }
                continue;
            }
            sumSqErr += errTorch * errTorch;
            sumSqRef += refNorm * refNorm;
            double rel = errTorch / refNorm;
            double relCpu = errCpu / refNorm;
            if (rel > worst) {
                worst = rel;
                worstName = name;
            }
            // Per tensor the two bf16 paths round at different places (the torch backend adds the LoCon branch inside
            // its second product, the cpu backend after rounding it), so their noise differs by up to ~1.8x either
            // way; a formulation that loses the delta (a merged bf16 weight: 40 %) fails both bounds by far.
            if (!(rel <= 0.1 && rel <= 2 * relCpu + 5e-3)) {
                bad.add(String.format(Locale.ROOT, "%s: torch bf16 %.3g, cpu backend bf16 %.3g", name, rel, relCpu));
            }
        }
        double total = Math.sqrt(sumSqErr / sumSqRef);
        System.out.printf(Locale.ROOT, "1e-4 delta, %d LoCon tensors: torch bf16 gradient error %.3g of the fp32 bypass"
                + " form overall, worst %.3g (%s)%n", ref.size(), total, worst, worstName);
        assertTrue(bad.isEmpty(), "bf16 LoCon gradients too far from the fp32 bypass form: " + bad);
        assertTrue(total <= 0.05, "overall bf16 gradient error " + total);
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) {
            s += (double) x * x;
        }
        return Math.sqrt(s);
    }

    private static float[] diff(float[] a, float[] b) {
        float[] d = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i] - b[i];
        }
        return d;
    }

    /**
     * Down matrices as LyCORIS initialises them (uniform ±1/√fan_in) and up matrices drawn at random and scaled
     * per module so that ‖scale · up · down‖ = 1e-4 ‖W‖, from a fixed seed; keyed by LoCon tensor name.
     */
    private static Map<String, float[]> smallDelta(ModelFixture m) {
        Map<String, float[]> values = new LinkedHashMap<>();
        UnetConfig config = UnetConfig.fromConfigFile(m.file("config.json"));
        SplittableRandom rng = new SplittableRandom(20241126);
        try (Scope model = Scope.root(cpu, "model");
             SafetensorsFile ckpt = SafetensorsFile.open(m.file("checkpoint.safetensors"))) {
            Unet unet = Unet.fromCheckpoint(ckpt, config, model, DType.F32);
            for (LoConTarget t : LoConPreset.unet(unet.layers(), unet.moduleClasses(), new LoConRanks(8, 4, 256, 4))) {
                int r = (int) t.downShape().dim(0);
                int cols = (int) (t.downShape().numel() / r);
                int out = (int) t.upShape().dim(0);
                float[] down = new float[r * cols];
                double bound = 1 / Math.sqrt(cols);
                for (int i = 0; i < down.length; i++) {
                    down[i] = (float) rng.nextDouble(-bound, bound);
                }
                double[] up = new double[out * r];
                for (int i = 0; i < up.length; i++) {
                    up[i] = rng.nextGaussian();
                }
                double scale = t.alpha() / r;
                double deltaSq = 0;                                   // ‖scale · up · down‖²
                for (int o = 0; o < out; o++) {
                    for (int c = 0; c < cols; c++) {
                        double s = 0;
                        for (int k = 0; k < r; k++) {
                            s += up[o * r + k] * down[k * cols + c];
                        }
                        deltaSq += scale * scale * s * s;
                    }
                }
                double weightSq = 0;
                for (float w : t.layer().weight().toHost()) {
                    weightSq += (double) w * w;
                }
                double factor = DELTA * Math.sqrt(weightSq / deltaSq);
                float[] upScaled = new float[up.length];
                for (int i = 0; i < up.length; i++) {
                    upScaled[i] = (float) (up[i] * factor);
                }
                values.put(t.name() + ".lora_down.weight", down);
                values.put(t.name() + ".lora_up.weight", upScaled);
                // below half a bf16 ulp of the weight's typical entry: merged into a bf16 weight, it would vanish
                assertTrue(DELTA < Math.pow(2, -9), "the delta is below bf16 resolution");
            }
        }
        return values;
    }

    /** Σ(eps · R) on fixed random inputs; the gradient of every LoCon tensor, by name. */
    private static Map<String, float[]> gradients(Backend backend, ModelFixture m, DType dtype, Map<String, float[]> values) {
        Map<String, float[]> out = new LinkedHashMap<>();
        UnetConfig config = UnetConfig.fromConfigFile(m.file("config.json"));
        SplittableRandom rng = new SplittableRandom(7);
        int n = 2;
        int side = 16;
        try (Scope model = Scope.root(backend, "model");
             SafetensorsFile ckpt = SafetensorsFile.open(m.file("checkpoint.safetensors"))) {
            Unet unet = Unet.fromCheckpoint(ckpt, config, model, dtype);
            unet.setCheckpointing(tenmin.models.sdxl.CheckpointPolicy.all());
            List<LoConTarget> targets = LoConPreset.unet(unet.layers(), unet.moduleClasses(), new LoConRanks(8, 4, 256, 4));
            LoConNetwork net = LoConNetwork.create(targets, model, new tenmin.engine.api.Generator(1));
            for (Tensor p : net.parameters()) {
                backend.copyInto(p, model.fromHost(values.get(p.name()), p.shape(), DType.F32));
            }
            try (Scope step = model.child("step")) {
                Functional f = Functional.training(step);
                Tensor x = step.fromHost(gaussian(rng, n * 4 * side * side), Shape.of(n, 4, side, side), DType.F32);
                long[] t = {rng.nextInt(1000), rng.nextInt(1000)};
                Tensor ctx = step.fromHost(gaussian(rng, n * 77 * config.contextDim()), Shape.of(n, 77, config.contextDim()),
                        DType.F32);
                Tensor y = step.fromHost(gaussian(rng, n * config.admInChannels()), Shape.of(n, config.admInChannels()),
                        DType.F32);
                Tensor r = step.fromHost(gaussian(rng, n * 4 * side * side), Shape.of(n, 4, side, side), DType.F32);
                Tensor eps = unet.forward(f, x, step.fromHost(t, n), ctx, y);
                f.backward(f.sum(f.mul(eps, r)));
                for (Tensor p : net.parameters()) {
                    out.put(p.name(), p.grad().toHost());
                }
            }
        }
        assertEquals(0, backend.liveTensors(), backend.name() + " tensors left alive");
        return out;
    }

    private static float[] gaussian(SplittableRandom rng, int count) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = (float) rng.nextGaussian();
        }
        return v;
    }
}
