package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import tenmin.core.Reporter;
import tenmin.core.WithProperty;
import tenmin.engine.api.DType;
import tenmin.engine.autograd.Functional;
import tenmin.formats.SafetensorsFile;
import tenmin.models.SdxlDtypes;
import tenmin.testing.TorchBackendTests;
import tenmin.testing.TrainRuns;
import tenmin.train.optim.DeviceClybW;
import tenmin.train.save.OutputNames;
import tenmin.train.save.TrainingStateFile;

/**
 * The loop a GPU runs, on CPU libtorch: the U-Net and text encoders in bf16 (a GPU's {@code --mixed_precision=bf16};
 * on a CPU tenmin trains in fp32, so the tests force it), the optimizer on the device, the LoCon merged into the
 * layers' weights (every layer: the toy model's are too small for {@code MergedLoraOp#pays}, so the tests force it),
 * the LoCon gradients of the small convolutions projected from the layer's weight gradient, the feed-forward
 * projections split in value and gate products, the parameter gradients added at the end of each backward, the text
 * encoders' backward issued after the next micro-batch's U-Net forward, and the sampling rounds with the LoCon merged
 * into copies of the weights. Two optimizer steps of the toy recipe (two micro-batches each, a save and resume state
 * each step, a sample each step), without and with {@code --gradient_checkpointing} (on a CPU: every U-Net block and
 * the text encoders recomputed).
 *
 * <p>What is compared: the optimizer's first moment ({@code ema}) after a step, with LodeW, whose first moment is a
 * running mean of the clipped gradients themselves (ClybW's, the recipe's, normalises each row first and so cannot
 * see a gradient's scale; both run on the same device optimizer): a dropped or doubled gradient is 1.0 of its norm
 * away. The deferred gradient sums and the text encoders' later backward only reorder the same additions: with them
 * the run equals the run without ({@code TENMIN_DEFER_GRADS=0 TENMIN_TE_PIPELINE=0}) bit for bit. The merged, projected
 * and split products round differently in bf16 (operands laid out otherwise, two products for one): at the first step
 * the moments are as close to the fp32 run's as those of the branches ({@code TENMIN_LORA_MERGE=0}) and of the cpu
 * backend's bf16 run, and each one above 1e-3 of the largest within 0.3 of its norm (0.09 at most here). At the second
 * step (after a first update of lr 0.03, so that the LoCon shows in the outputs) the losses stay within 1 % of the
 * branches' (0.24 % here; a LoCon merged at twice its scale: 11.8 %) and the moments as close to the fp32 run's as
 * the two other bf16 runs'. Checked by mutations: a cast's partial gradient dropped, every other deferred
 * text-encoder backward dropped, the merged scale doubled, the projected dUp doubled, the split dUp's halves swapped.
 */
@Tag("torch")
class RecipeBf16TorchTest extends TorchBackendTests {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "gradient checkpointing {0}")
    @ValueSource(booleans = {false, true})
    void theGpuLoopInBf16MatchesItsSimplerPathsAndTheCpuBackend(boolean checkpointing) throws Exception {
        Path data = tmp.resolve("data");
        TrainRuns.discs(data, "1_disc", 4, Color.RED, "ohwx, red disc");
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "ohwx, red disc --w 64 --h 64 --s 2\n");
        String[] flags = {"--mixed_precision=bf16", "--max_train_steps=2", "--save_state",
                "--gradient_accumulation_steps=3", "--save_every_n_steps=1", "--sample_prompts=" + prompts,
                "--sample_every_n_steps=1", "--learning_rate=0.03", "--unet_lr=0.03", "--text_encoder_lr=0.03",
                checkpointing ? "--gradient_checkpointing" : "--seed=7",   // with it, every block is recomputed here
                // conv rank 32: the 32- and 64-channel convolutions' LoCon gradients are projections of dW', as the
                // recipe's 320-channel ones at rank 256 (MergedLoraOp#projects), the 128-channel ones the branch's
                "--network_args", "preset=full", "conv_dim=32", "conv_alpha=16", "algo=locon",
                // ClybW's first moment is a mean of row-normalised gradients, blind to a gradient's scale; LodeW's,
                // on the same device optimizer, of the clipped gradients themselves
                "--optimizer_type=LodeW"};
        Trainer.Result f32 = TrainRuns.train(TrainRuns.config(data, tmp.resolve("f32"), flags), Reporter.SILENT);
        Trainer.Result on;
        Trainer.Result reordered;
        Trainer.Result off;
        Trainer.Result cpu;
        TrainSetup.dtypesForTests = new SdxlDtypes(DType.BF16, DType.BF16, DType.F32);
        try {
            Trainer.mergeSamplesForTests = true;
            on = mergeAlways(() -> onDevice(() -> TrainRuns.train(new Trainer[1],
                    TrainRuns.config(data, tmp.resolve("on"), flags), Reporter.SILENT, torch)));
            Trainer.mergeSamplesForTests = null;
            reordered = mergeAlways(() -> reorderingsOff(() -> onDevice(() -> TrainRuns.train(new Trainer[1],
                    TrainRuns.config(data, tmp.resolve("reordered"), flags), Reporter.SILENT, torch))));
            off = off(Functional.MERGE_LORA_PROPERTY, () -> reorderingsOff(() -> onDevice(() -> TrainRuns.train(
                    new Trainer[1], TrainRuns.config(data, tmp.resolve("off"), flags), Reporter.SILENT, torch))));
            cpu = TrainRuns.train(TrainRuns.config(data, tmp.resolve("cpu"), flags), Reporter.SILENT);
        } finally {
            TrainSetup.dtypesForTests = null;
            Trainer.mergeSamplesForTests = null;
        }
        for (Trainer.Result r : List.of(f32, on, reordered, off, cpu)) {
            assertEquals(Trainer.Outcome.COMPLETED, r.outcome(), r.message());
            assertEquals(2, r.steps());
        }

        Path first = on.lastLora().resolveSibling(OutputNames.step(null, 1));
        Path other = reordered.lastLora().resolveSibling(first.getFileName());
        Map<String, float[]> onEma = ema(first);
        Map<String, float[]> reorderedEma = ema(other);
        assertEquals(reorderedEma.keySet(), onEma.keySet());
        onEma.forEach((k, v) -> assertArrayEquals(reorderedEma.get(k), v, k + ": step 1, deferred and pipelined or not"));
        assertSameLora(first, other);
        Map<String, float[]> f32Ema = ema(f32.lastLora().resolveSibling(first.getFileName()));
        double onDistance = distance(onEma, f32Ema);
        double others = Math.max(distance(ema(off.lastLora().resolveSibling(first.getFileName())), f32Ema),
                distance(ema(cpu.lastLora().resolveSibling(first.getFileName())), f32Ema));
        assertTrue(onDistance <= 1.5 * others, "step 1: switches on " + onDistance + " from fp32, the branches and the"
                + " cpu backend's bf16 up to " + others);
        double largest = f32Ema.values().stream().mapToDouble(v -> norm(v, null)).max().orElseThrow();
        for (String k : f32Ema.keySet()) {
            double n = norm(f32Ema.get(k), null);
            if (n >= 1e-3 * largest) {          // a dropped or doubled gradient is 1.0 away; bf16's worst here: 0.09
                double d = norm(onEma.get(k), f32Ema.get(k)) / n;
                assertTrue(d <= 0.3, k + ": step 1, " + d + " of its norm from fp32");
            }
        }

        for (int i = 2; i < 4; i++) {        // 0.24 % apart here; a LoCon merged at twice its scale: 11.8 %
            double want = off.losses().get(i);
            assertEquals(want, on.losses().get(i), 1e-2 * want, "step 2, loss " + i + ", merged and as branches");
            assertEquals(reordered.losses().get(i), on.losses().get(i), "step 2, loss " + i + ", deferred and pipelined or not");
        }
        Map<String, float[]> f32Last = ema(f32.lastLora());
        double onLast = distance(ema(on.lastLora()), f32Last);
        double othersLast = Math.max(distance(ema(off.lastLora()), f32Last), distance(ema(cpu.lastLora()), f32Last));
        assertTrue(onLast <= 1.5 * othersLast, "step 2: switches on " + onLast + " from fp32, the branches and the cpu"
                + " backend's bf16 up to " + othersLast);
    }

    private static <T> T onDevice(Supplier<T> body) {
        return WithProperty.with(DeviceClybW.PROPERTY, "1", body);
    }

    private static <T> T mergeAlways(Supplier<T> body) {
        return WithProperty.with(Functional.MERGE_ALWAYS_PROPERTY, "true", body);
    }

    private static <T> T off(String property, Supplier<T> body) {
        return WithProperty.with(property, "0", body);
    }

    /** Without the deferred gradient sums and the text encoders' later backward: the same sums in another order. */
    private static <T> T reorderingsOff(Supplier<T> body) {
        return off(Functional.DEFER_GRADS_PROPERTY, () -> off(Trainer.PIPELINE_PROPERTY, body));
    }

    /** The optimizer's first moments in the resume state beside the LoRA file {@code lora}, by parameter. */
    private static Map<String, float[]> ema(Path lora) {
        Path state = lora.resolveSibling(OutputNames.stateFor(lora.getFileName().toString()));
        Map<String, float[]> out = new TreeMap<>();
        TrainingStateFile.read(state).optimizer().tensors().forEach((k, v) -> {
            if (k.endsWith("/ema")) {
                out.put(k, v);
            }
        });
        assertTrue(out.size() > 100, state + ": " + out.size() + " first moments");
        return out;
    }

    private static void assertSameLora(Path a, Path b) throws Exception {
        try (SafetensorsFile x = SafetensorsFile.open(a); SafetensorsFile y = SafetensorsFile.open(b)) {
            assertEquals(x.names(), y.names());
            for (String k : x.names()) {
                assertArrayEquals(x.readFloats(k), y.readFloats(k), k);
            }
        }
    }

    /** ‖x − ref‖ / ‖ref‖ over every tensor together. */
    private static double distance(Map<String, float[]> x, Map<String, float[]> ref) {
        double n = 0;
        double d = 0;
        for (String k : ref.keySet()) {
            n += Math.pow(norm(x.get(k), ref.get(k)), 2);
            d += Math.pow(norm(ref.get(k), null), 2);
        }
        return Math.sqrt(n / d);
    }

    private static double norm(float[] x, float[] minus) {
        double s = 0;
        for (int i = 0; i < x.length; i++) {
            double v = x[i] - (minus == null ? 0 : minus[i]);
            s += v * v;
        }
        return Math.sqrt(s);
    }
}
