package tenmin.engine.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tenmin.engine.autograd.GradAssert.param;
import static tenmin.engine.autograd.GradAssert.randn;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.Half;
import tenmin.testing.Numerics;

/** Tape semantics: accumulation, inference mode, freeing, mixed precision. */
class TapeTest {
    private final CpuBackend backend = new CpuBackend(2);
    private final Scope model = Scope.root(backend, "model");

    @AfterEach
    void close() {
        model.close();
        assertEquals(0, backend.liveTensors());
        backend.close();
    }

    private void step(Tensor x, Tensor w, Tensor b) {
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            f.backward(f.mean(f.silu(f.linear(x, w, b))));
        }
    }

    /** loss = mean((2·silu(h) + 1) · h), h = linear(x, w, b), releasing its intermediates when asked. */
    private float[] releasingStep(Tensor x, Tensor w, Tensor b, boolean release, long[] liveAfterForward, boolean[] states) {
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            Tensor h = f.linear(x, w, b);                  // read by the backwards of silu and mul
            Tensor s = f.silu(h);                          // read by nobody (affine needs no values)
            Tensor t = f.affine(s, 2.0, 1.0);              // read by mul's backward
            Tensor y = f.mul(t, h);
            if (release) {
                f.release(h, s, t, w, x);                  // w (a parameter) and x (another scope) are left alone
                states[0] = h.isClosed();
                states[1] = s.isClosed();
                states[2] = t.isClosed();
            }
            Tensor loss = f.mean(y);
            liveAfterForward[0] = backend.liveBytes();
            f.backward(loss);
            if (release) {
                states[3] = h.isClosed() && t.isClosed();
                assertTrue(!w.isClosed() && !x.isClosed());
            }
        }
        return w.grad().toHost();
    }

    @Test
    void releasedTensorsCloseWhenNoBackwardReadsThemAndGradientsDoNotChange() {
        Tensor x = randn(model, "x", 1, 1, 4, 3);
        Tensor w = param(model, "w", 2, 1, 5, 3);
        Tensor b = param(model, "b", 3, 1, 5);
        long[] keptPlain = new long[1];
        long[] keptReleased = new long[1];
        boolean[] states = new boolean[4];
        float[] plain = releasingStep(x, w, b, false, keptPlain, states);
        w.zeroGrad();
        b.zeroGrad();
        float[] released = releasingStep(x, w, b, true, keptReleased, states);
        assertArrayEquals(plain, released, "same gradients");
        assertTrue(!states[0] && !states[2], "h and t are read by backwards: kept until those have run");
        assertTrue(states[1], "s is read by no backward: closed at once");
        assertTrue(states[3], "h and t closed once their readers' backwards ran");
        assertEquals(keptPlain[0] - 4 * 5 * 4, keptReleased[0], "s's 20 floats freed before the backward");
    }

    @Test
    void releaseWithoutATapeClosesAtOnceButNeverTouchesOtherScopes() {
        Tensor w = param(model, "w", 2, 1, 5, 3);
        try (Scope step = model.child("step")) {
            Functional f = Functional.inference(step);
            Tensor cast = f.cast(w, DType.F32);            // returns w itself: not this scope's
            Tensor h = f.silu(w);
            f.release(cast, h, null);
            assertTrue(h.isClosed());
            assertTrue(!w.isClosed(), "a tensor of the model scope is left alone");
        }
    }

    @Test
    void parameterGradientsAccumulateOverMicroBatches() {
        Tensor x = randn(model, "x", 1, 1, 4, 3);
        Tensor w = param(model, "w", 2, 1, 5, 3);
        Tensor b = param(model, "b", 3, 1, 5);
        step(x, w, b);
        float[] once = w.grad().toHost();
        step(x, w, b);
        float[] twice = w.grad().toHost();
        for (int i = 0; i < once.length; i++) {
            assertEquals(2 * once[i], twice[i], 1e-6f);
        }
        w.zeroGrad();
        step(x, w, b);
        assertArrayEquals(once, w.grad().toHost());
    }

    @Test
    void backwardLeavesOnlyLeafGradientsBehind() {
        Tensor x = randn(model, "x", 4, 1, 2, 4, 6, 6);
        Tensor w = param(model, "w", 5, 0.3, 4, 4, 3, 3);
        Tensor g = param(model, "gamma", 6, 0.1, 4);
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            Tensor h = f.conv2d(f.silu(f.groupNorm(x, g, null, 2, 1e-5)), w, null, 1, 1);
            Tensor loss = f.mseLoss(f.add(h, x), x);
            int before = step.liveTensors();
            f.backward(loss);
            assertEquals(before, step.liveTensors(), "activation gradients and scratch are released during backward");
        }
        assertTrue(Math.abs(w.grad().toHost()[0]) > 0);
    }

    @Test
    void inferenceRecordsNothingAndSavesNothing() {
        Tensor x = randn(model, "x", 7, 1, 2, 4, 3, 3);
        Tensor gamma = param(model, "gamma", 8, 1, 4);
        try (Scope s = model.child("inference")) {
            Functional f = Functional.inference(s);
            Tensor y = f.groupNorm(x, gamma, null, 2, 1e-5);
            assertEquals(1, s.liveTensors(), "statistics for a backward are not kept");
            assertThrows(IllegalStateException.class, () -> f.backward(f.sum(y)));
        }
        try (Scope s = model.child("training")) {
            Functional f = Functional.training(s);
            Tensor y = f.noGrad().silu(f.groupNorm(x, gamma, null, 2, 1e-5));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.backward(f.sum(y)));
            assertTrue(e.getMessage().contains("does not depend"), e.getMessage());
        }
    }

    @Test
    void onlyTensorsThatRequireGradReceiveGradients() {
        Tensor x = randn(model, "x", 9, 1, 3, 4);
        Tensor frozen = randn(model, "frozen", 10, 1, 4, 4);
        Tensor lora = param(model, "lora", 11, 1, 4, 4);
        try (Scope step = model.child("step")) {
            Functional f = Functional.training(step);
            f.backward(f.sum(f.add(f.linear(x, frozen, null), f.linear(x, lora, null))));
        }
        assertNull(frozen.grad());
        assertNull(x.grad());
        // d/dlora Σ x loraᵀ = column sums of x, for every row of lora
        float[] xs = x.toHost();
        float[] g = lora.grad().toHost();
        for (int o = 0; o < 4; o++) {
            for (int k = 0; k < 4; k++) {
                assertEquals(xs[k] + xs[4 + k] + xs[8 + k], g[o * 4 + k], 1e-5);
            }
        }
    }

    @Test
    void fp32ParametersGetFp32GradientsThroughBf16Activations() {
        Tensor x = randn(model, "x", 12, 1, 6, 8);
        Tensor w = randn(model, "w", 13, 0.3, 8, 8);
        Tensor down = param(model, "down", 14, 0.3, 2, 8);
        Tensor up = param(model, "up", 15, 0.3, 8, 2);
        float[] bf16Grad;
        float[] fp32Grad;
        try (Scope step = model.child("bf16")) {
            Functional f = Functional.training(step);
            Tensor xb = f.cast(x, DType.BF16);                                   // (6, 8) bf16
            Tensor base = f.linear(xb, f.cast(w, DType.BF16), null);             // frozen bf16 matmul
            Tensor delta = f.linear(f.linear(x, down, null), up, null);          // LoRA path in fp32
            Tensor y = f.add(f.cast(base, DType.F32), delta);
            assertEquals(DType.BF16, base.dtype());
            for (float v : base.toHost()) {
                assertEquals(Half.bf16ToF32(Half.f32ToBf16(v)), v, "bf16 results are stored rounded");
            }
            f.backward(f.mean(f.mul(y, y)));
            assertEquals(DType.F32, up.grad().dtype());
            bf16Grad = up.grad().toHost();
        }
        up.zeroGrad();
        down.zeroGrad();
        try (Scope step = model.child("fp32")) {
            Functional f = Functional.training(step);
            Tensor y = f.add(f.linear(x, w, null), f.linear(f.linear(x, down, null), up, null));
            f.backward(f.mean(f.mul(y, y)));
            fp32Grad = up.grad().toHost();
        }
        Numerics.assertClose("bf16 vs fp32 LoRA grad", new long[] {8, 2}, fp32Grad, bf16Grad, 1e-3, 2e-2);
    }
}
