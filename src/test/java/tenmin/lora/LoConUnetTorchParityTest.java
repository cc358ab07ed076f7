package tenmin.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.DynamicTest.dynamicTest;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.torch.LibTorch;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchTesting;
import tenmin.testing.Fixtures;
import tenmin.testing.ModelFixture;
import tenmin.testing.Numerics;

/**
 * The tiny fixture U-Nets with their LoCon, one training step (forward, loss Σ(eps·R), backward) on the
 * torch backend (CPU libtorch) against the same step on the {@code cpu} backend: eps, loss, the input
 * gradient and every LoRA gradient. fp32 within 1e-4 relative (issue 4's parity bound; LoRA gradients
 * with the fixtures' G term for analytically-zero entries). In bf16 (weights and activations; LoRA
 * parameters and gradients fp32) the two backends round at different points, each about 3e-2 away from
 * fp32 on eps and more on gradients, so they are not compared with each other: each is compared with the
 * fp32 step, and torch's error must stay within 3 times the cpu backend's (plus 1e-3) for every tensor.
 * The cpu backend rounds only each op's result to bf16; ATen's bf16 kernels also round inside (CPU flash
 * attention rounds the probabilities to bf16 before P·V, as the GPU kernels do), which measured up to 2.3
 * times the cpu backend's error on single LoRA gradients (all below 0.016·G) on tiny-a. A bf16 accumulation
 * or a wrong kernel would be off by far more.
 */
@Tag("torch")
class LoConUnetTorchParityTest {
    private static CpuBackend cpu;
    private static TorchBackend torch;

    @BeforeAll
    static void start() {
        LibTorch lib = TorchTesting.libTorchOrSkip();
        cpu = new CpuBackend();
        torch = new TorchBackend(lib, Device.CPU);
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

    @TestFactory
    List<DynamicTest> trainingStepMatchesTheCpuBackend() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Path dir : Fixtures.modelDirs()) {
            ModelFixture m = ModelFixture.of(dir);
            for (String c : m.cases("unet-io.safetensors", ".lora.eps")) {
                String tag = " [" + m.name() + "] " + c;
                tests.add(dynamicTest("torch vs cpu locon step fp32" + tag, () -> compare(m, c, DType.F32, 1e-4, 1e-5)));
                tests.add(dynamicTest("torch vs cpu locon step bf16 error" + tag, () -> compareBf16(m, c)));
            }
        }
        return tests;
    }

    private static void compare(ModelFixture m, String c, DType dtype, double rel, double gTerm) {
        Map<String, float[]> want = step(cpu, m, c, dtype);
        Map<String, float[]> got = step(torch, m, c, dtype);
        assertEquals(want.keySet(), got.keySet());
        double g = maxLoraGrad(want);
        String at = m.name() + " " + c + " " + dtype + " ";
        for (Map.Entry<String, float[]> e : want.entrySet()) {
            boolean lora = e.getKey().startsWith("grad.lora_");
            Numerics.assertClose(at + e.getKey(), null, e.getValue(), got.get(e.getKey()), lora ? gTerm * g : 0, rel);
        }
    }

    /** bf16 on both backends against the fp32 step: torch's error at most 3x the cpu backend's + 1e-3. */
    private static void compareBf16(ModelFixture m, String c) {
        Map<String, float[]> ref = step(cpu, m, c, DType.F32);
        Map<String, float[]> cpuBf16 = step(cpu, m, c, DType.BF16);
        Map<String, float[]> torchBf16 = step(torch, m, c, DType.BF16);
        double g = maxLoraGrad(ref);
        StringBuilder bad = new StringBuilder();
        double worstRatio = 0;
        for (Map.Entry<String, float[]> e : ref.entrySet()) {
            boolean lora = e.getKey().startsWith("grad.lora_");
            double scale = lora ? g : Numerics.maxAbs(e.getValue());
            double errCpu = Numerics.diff(e.getValue(), cpuBf16.get(e.getKey())).maxAbs() / scale;
            double errTorch = Numerics.diff(e.getValue(), torchBf16.get(e.getKey())).maxAbs() / scale;
            worstRatio = Math.max(worstRatio, errTorch / Math.max(errCpu, 1e-3));
            if (!(errTorch <= 3 * errCpu + 1e-3)) {
                bad.append(String.format(java.util.Locale.ROOT, "%n  %s: torch bf16 error %.3g, cpu bf16 error %.3g",
                        e.getKey(), errTorch, errCpu));
            }
        }
        if (!bad.isEmpty()) {
            throw new AssertionError(m.name() + " " + c + ": torch bf16 less accurate than the cpu backend's" + bad);
        }
        System.out.printf(java.util.Locale.ROOT, "%s %s: torch bf16 error / cpu bf16 error, worst tensor: %.2f%n",
                m.name(), c, worstRatio);
    }

    private static double maxLoraGrad(Map<String, float[]> grads) {
        double g = 0;
        for (Map.Entry<String, float[]> e : grads.entrySet()) {
            if (e.getKey().startsWith("grad.lora_")) {
                g = Math.max(g, Numerics.maxAbs(e.getValue()));
            }
        }
        return g;
    }

    /** One forward + backward from Σ(eps·R) with the fixture LoCon; lora.eps, lora.loss, grad.x and grad.<key>. */
    private static Map<String, float[]> step(Backend backend, ModelFixture m, String c, DType dtype) {
        List<Map<String, float[]>> out = new ArrayList<>();
        LoConUnetFixtureTest.withFixtureLoCon(backend, m, dtype,
                (unet, net, io, model) -> out.add(LoConUnetFixtureTest.step(unet, net, io, c, model, new long[1])));
        return out.getFirst();
    }
}
