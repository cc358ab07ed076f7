package tenmin.train.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.DType;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.formats.SafetensorsFile;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;
import tenmin.testing.TorchBackendTests;
import tenmin.train.Rng;

/**
 * The optimizer step on the device (torch backend, CPU libtorch) against the reference's recorded Compass steps
 * and against the host {@link ClybW} with {@link GradClip}: the same update to float rounding, the parameters
 * still the same tensor objects (now views of one buffer), gradients zero after the step.
 */
@Tag("torch")
class DeviceClybWTest extends TorchBackendTests {
    private static final double LR = 3e-4;

    /** Host params and their device tensors (fp32, requiring gradients), one group per list. */
    private record Setup(List<List<Param>> host, List<List<Tensor>> device) {
    }

    private static Setup setup(Scope scope, List<List<Param>> host) {
        return new Setup(host, DeviceOptimizerParity.deviceTensors(scope, host));
    }

    private static void gradients(Scope scope, Setup s, float[][][] grads) {
        DeviceOptimizerParity.setGradients(scope, s.host(), s.device(), grads);
    }

    @Test
    void matchesReferenceCompassOnFixture() {
        Path file = Fixtures.require("clybw.safetensors");
        try (SafetensorsFile f = SafetensorsFile.open(file);
             Scope scope = Scope.root(torch, "device clybw fixture")) {
            List<Param> params = new ArrayList<>();
            for (String n : f.names()) {
                if (n.endsWith(".init")) {
                    params.add(new Param(n.substring(0, n.length() - ".init".length()), f.info(n).shape(), f.readFloats(n)));
                }
            }
            Setup s = setup(scope, List.of(params));
            ClybW host = new ClybW(ClybW.Hyper.CLYBW);
            DeviceClybW opt = DeviceClybW.pack(host, s.host(), s.device(), scope);
            int steps = 0;
            while (f.contains(params.get(0).name() + ".grad" + (steps + 1))) {
                steps++;
            }
            assertTrue(steps >= 2, "steps in the fixture: " + steps);
            for (int step = 1; step <= steps; step++) {
                float[][][] grads = new float[1][params.size()][];
                for (int i = 0; i < params.size(); i++) {
                    grads[0][i] = f.readFloats(params.get(i).name() + ".grad" + step);
                }
                gradients(scope, s, grads);
                opt.step(new double[] {LR}, 0);
                for (int i = 0; i < params.size(); i++) {
                    Param p = params.get(i);
                    Tensor t = s.device().get(0).get(i);
                    Numerics.assertClose(p.name() + ".param" + step, p.shape(), f.readFloats(p.name() + ".param" + step),
                            t.toHost(), 1e-9, 1e-6);
                    assertEquals(0.0, Numerics.maxAbs(t.grad().toHost()), p.name() + ": gradient zeroed after the step");
                }
            }
            OptimizerState state = opt.exportState();
            assertEquals("ClybW", state.type());
            for (Param p : params) {
                assertEquals(f.readLongs(p.name() + ".step")[0], state.steps().get(p.name()), p.name() + ".step");
                Numerics.assertClose(p.name() + ".ema", p.shape(), f.readFloats(p.name() + ".ema"),
                        state.tensors().get(p.name() + "/ema"), 1e-12, 1e-5);
                Numerics.assertClose(p.name() + ".ema_squared", p.shape(), f.readFloats(p.name() + ".ema_squared"),
                        state.tensors().get(p.name() + "/ema_squared"), 1e-15, 1e-5);
            }
        }
    }

    private static void agreesWithHost(ClybW.Hyper h, boolean lodeW) {
        DeviceOptimizerParity.Result r = DeviceOptimizerParity.compare(torch, h, lodeW, 11);
        assertTrue(r.within(1e-5), r.toString());
    }

    @Test
    void agreesWithTheHostClybWAndClip() {
        agreesWithHost(ClybW.Hyper.CLYBW, false);
    }

    @Test
    void agreesWithTheHostLodeW() {
        agreesWithHost(ClybW.Hyper.LODEW, true);
    }

    /** Per-tensor instead of per-row normalisation ({@code normalize_channels=False}). */
    @Test
    void agreesWithTheHostWithoutChannelNormalisation() {
        ClybW.Hyper h = new ClybW.Hyper(0.95, 0.95, 2.0, 1e-8, 0.1, 0.5, 0.5, false);
        agreesWithHost(h, false);
    }

    /** A state exported from the device (or the host) and imported into a new device optimizer continues the run. */
    @Test
    void stateRoundTripContinuesTheRun() {
        Rng rng = new Rng(5);
        List<List<Param>> params = DeviceOptimizerParity.loconLike(rng);
        double[] lrs = {1e-4, 3e-4};
        float[][][] g1 = DeviceOptimizerParity.randomGradients(params, rng);
        float[][][] g2 = DeviceOptimizerParity.randomGradients(params, rng);
        try (Scope scope = Scope.root(torch, "device clybw state")) {
            Setup a = setup(scope, DeviceOptimizerParity.copy(params));
            DeviceClybW straight = DeviceClybW.pack(new ClybW(ClybW.Hyper.CLYBW), a.host(), a.device(), scope);
            gradients(scope, a, g1);
            straight.step(lrs, 1);
            OptimizerState after1 = straight.exportState();
            List<List<float[]>> valuesAfter1 = values(a);
            gradients(scope, a, g2);
            straight.step(lrs, 1);

            Setup b = setup(scope, DeviceOptimizerParity.copy(params));
            DeviceClybW resumed = DeviceClybW.pack(new ClybW(ClybW.Hyper.CLYBW), b.host(), b.device(), scope);
            for (int g = 0; g < valuesAfter1.size(); g++) {
                for (int i = 0; i < valuesAfter1.get(g).size(); i++) {
                    Tensor t = b.device().get(g).get(i);
                    try (Scope tmp = scope.child("restore")) {
                        torch.copyInto(t, tmp.fromHost(valuesAfter1.get(g).get(i), t.shape(), DType.F32));
                    }
                }
            }
            resumed.importState(after1);
            gradients(scope, b, g2);
            resumed.step(lrs, 1);
            for (int g = 0; g < params.size(); g++) {
                for (int i = 0; i < params.get(g).size(); i++) {
                    assertArrayEquals(a.device().get(g).get(i).toHost(), b.device().get(g).get(i).toHost(),
                            "g" + g + "p" + i);
                }
            }
            OptimizerState wrongType = new OptimizerState("AdamW", after1.steps(), after1.tensors());
            assertThrows(IllegalArgumentException.class, () -> resumed.importState(wrongType));
        }
    }

    /** A non-finite gradient norm: nothing is updated, no moment or step changes, and the gradients are cleared. */
    @Test
    void nonFiniteNormSkipsTheUpdate() {
        Rng rng = new Rng(3);
        List<List<Param>> params = DeviceOptimizerParity.loconLike(rng);
        try (Scope scope = Scope.root(torch, "device clybw nan")) {
            Setup s = setup(scope, params);
            DeviceClybW opt = DeviceClybW.pack(new ClybW(ClybW.Hyper.CLYBW), s.host(), s.device(), scope);
            List<List<float[]>> before = values(s);
            float[][][] grads = DeviceOptimizerParity.randomGradients(params, rng);
            grads[1][2][3] = Float.NaN;
            gradients(scope, s, grads);
            double norm = opt.step(new double[] {1e-4, 3e-4}, 1);
            assertFalse(Double.isFinite(norm));
            List<List<float[]>> after = values(s);
            for (int g = 0; g < before.size(); g++) {
                for (int i = 0; i < before.get(g).size(); i++) {
                    assertArrayEquals(before.get(g).get(i), after.get(g).get(i), "values untouched");
                }
            }
            assertTrue(opt.exportState().steps().isEmpty(), "no step counted");
            for (List<Tensor> g : s.device()) {
                for (Tensor t : g) {
                    assertEquals(0.0, Numerics.maxAbs(t.grad().toHost()));
                }
            }
        }
    }

    @Test
    void needsABackendThatAliasesAndMatrices() {
        List<List<Param>> params = List.of(List.of(new Param("v", new long[] {5}, new float[5])));
        assertFalse(DeviceClybW.supports(new ClybW(ClybW.Hyper.CLYBW), torch, params), "a 1-d parameter");
        List<List<Param>> matrices = List.of(List.of(new Param("m", new long[] {2, 3}, new float[6])));
        assertTrue(DeviceClybW.supports(new ClybW(ClybW.Hyper.CLYBW), torch, matrices));
        assertFalse(DeviceClybW.supports(new AdamW(AdamW.Hyper.DEFAULTS), torch, matrices), "not ClybW");
        try (CpuBackend cpu = new CpuBackend()) {
            assertFalse(DeviceClybW.supports(new ClybW(ClybW.Hyper.CLYBW), cpu, matrices), "the cpu backend");
        }
    }

    private static List<List<float[]>> values(Setup s) {
        List<List<float[]>> out = new ArrayList<>();
        for (List<Tensor> g : s.device()) {
            List<float[]> vs = new ArrayList<>();
            for (Tensor t : g) {
                vs.add(t.toHost());
            }
            out.add(vs);
        }
        return out;
    }
}
