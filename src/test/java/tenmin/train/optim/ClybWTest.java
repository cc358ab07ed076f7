package tenmin.train.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;

class ClybWTest {
    private static final double LR = 3e-4;

    /** Every parameter of the fixture in one group, stepped 5 times with the recorded gradients. */
    @Test
    void matchesReferenceCompassBitForBitOnFixture() {
        Path file = Fixtures.require("clybw.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            List<Param> params = new ArrayList<>();
            for (String n : f.names()) {
                if (n.endsWith(".init")) {
                    String p = n.substring(0, n.length() - ".init".length());
                    params.add(new Param(p, f.info(n).shape(), f.readFloats(n)));
                }
            }
            assertTrue(params.size() >= 3, "fixture parameters found: " + params);
            int steps = 0;
            while (f.contains(params.get(0).name() + ".grad" + (steps + 1))) {
                steps++;
            }
            ClybW opt = new ClybW(ClybW.Hyper.CLYBW);
            List<ParamGroup> groups = List.of(new ParamGroup("all", LR, params));
            for (int s = 1; s <= steps; s++) {
                for (Param p : params) {
                    p.zeroGrad();
                    p.accumulateGrad(f.readFloats(p.name() + ".grad" + s));
                }
                opt.step(groups, new double[] {LR});
                for (Param p : params) {
                    Numerics.assertClose(p.name() + ".grad_after" + s, p.shape(), f.readFloats(p.name() + ".grad_after" + s),
                            p.grad(), 1e-9, 0);
                    Numerics.assertClose(p.name() + ".param" + s, p.shape(), f.readFloats(p.name() + ".param" + s),
                            p.value(), 1e-9, 0);
                }
            }
            for (Param p : params) {
                Numerics.assertClose(p.name() + ".ema", p.shape(), f.readFloats(p.name() + ".ema"),
                        opt.buffer(p.name(), "ema"), 1e-9, 0);
                Numerics.assertClose(p.name() + ".ema_squared", p.shape(), f.readFloats(p.name() + ".ema_squared"),
                        opt.buffer(p.name(), "ema_squared"), 1e-12, 0);
                assertEquals(f.readLongs(p.name() + ".step")[0], opt.stepOf(p.name()), p.name() + ".step");
            }
        }
    }

    /** Fixtures README Q4: a tensor whose gradient is None gets no update, no weight decay, no state. */
    @Test
    void skipsParametersWithoutGradient() {
        float[] init = {1f, -2f, 3f, 0.5f, 0.25f, -1f};
        Param noGrad = new Param("frozen", new long[] {2, 3}, init.clone());
        Param zeroGrad = new Param("zero", new long[] {2, 3}, init.clone());
        zeroGrad.markGrad(); // present but all zero: weight decay still acts
        ClybW opt = new ClybW(ClybW.Hyper.CLYBW);
        opt.step(List.of(new ParamGroup("g", LR, List.of(noGrad, zeroGrad))), new double[] {LR});
        assertArrayEquals(init, noGrad.value());
        assertEquals(0, opt.stepOf("frozen"));
        assertNull(opt.buffer("frozen", "ema"));
        // zero gradient: std 0 -> 0/1e-8 = 0, update 0, only decay: P * (1 - lr/(1-0.95) * 0.1)
        double decay = 1 - LR / (1 - 0.95) * 0.1;
        for (int i = 0; i < init.length; i++) {
            assertEquals((float) (init[i] * (float) decay), zeroGrad.value()[i], 0f);
        }
        assertEquals(1, opt.stepOf("zero"));
    }

    /** The reduction order of long rows: the emulated float sum stays within float rounding of the exact sum. */
    @Test
    void longRowSumIsCloseToExactSum() {
        tenmin.train.Rng rng = new tenmin.train.Rng(7);
        for (int n : new int[] {1, 5, 8, 27, 100, 511, 512, 4097, 11520, 100_003}) {
            float[] a = new float[n];
            double exact = 0;
            double absSum = 0;
            for (int i = 0; i < n; i++) {
                a[i] = (float) rng.nextGaussian();
                exact += a[i];
                absSum += Math.abs(a[i]);
            }
            float s = TorchCpuFloat.sum(a, 0, n);
            assertTrue(Math.abs(s - exact) <= 1e-6 * absSum + 1e-6, "n=" + n + " sum " + s + " exact " + exact);
        }
    }
}
