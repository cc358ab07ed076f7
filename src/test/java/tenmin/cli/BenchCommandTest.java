package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import tenmin.testing.Cli;

/** {@code tenmin bench}: bad targets and options are usage errors; the measurement itself is not a test. */
class BenchCommandTest {
    @Test
    void unknownTargetIsAUsageError() {
        Cli.Run r = Cli.run("bench", "nosuch");
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("unknown target 'nosuch' (expected: matmul, step, sample, vae or train)"), r.toString());
        assertEquals("", r.out());
    }

    @Test
    void badRunCountIsAUsageError() {
        Cli.Run r = Cli.run("bench", "matmul", "--runs", "0");
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("--runs"), r.toString());
    }

    @Test
    void badSampleOptionsAreUsageErrors() {
        Cli.Run size = Cli.run("bench", "sample", "--size", "huge");
        assertEquals(2, size.exit(), size.toString());
        assertTrue(size.err().contains("huge"), size.toString());
        Cli.Run width = Cli.run("bench", "sample", "--width", "100");
        assertEquals(2, width.exit(), width.toString());
        assertTrue(width.err().contains("width 100"), width.toString());
        Cli.Run device = Cli.run("bench", "sample", "--device", "tpu");
        assertEquals(2, device.exit(), device.toString());
        assertTrue(device.err().contains("tpu"), device.toString());
    }

    @Test
    void vaeMeasuresEncodeAndDecodeOfTheTinyVaeAndRejectsBadSizes() {
        Cli.Run r = Cli.run("bench", "vae", "--size", "tiny", "--width", "32", "--height", "48", "--runs", "1", "--warmup",
                "0", "--threads", "2");
        assertEquals(0, r.exit(), r.toString());
        for (String line : new String[] {"cpu backend on cpu", "tiny VAE (fp32, random weights), 32x48",
                "encode 1x3x48x32 (fp32, posterior sample, to host): ", "decode 1x4x6x4 (fp32, to host): "}) {
            assertTrue(r.out().contains(line), "missing '" + line + "' in\n" + r);
        }
        Cli.Run timed = Cli.run("bench", "vae", "--size", "tiny", "--width", "32", "--height", "32", "--runs", "1",
                "--warmup", "0", "--threads", "2", "--op-times");
        assertEquals(0, timed.exit(), timed.toString());
        assertTrue(timed.out().contains("op times of one encode") && timed.out().contains("op times of one decode")
                && timed.out().contains("| encode | convolution |") && timed.out().contains("| decode | convolution |"),
                timed.toString());
        Cli.Run bad = Cli.run("bench", "vae", "--size", "tiny", "--width", "100");
        assertEquals(2, bad.exit(), bad.toString());
        assertTrue(bad.err().contains("--width 100 and --height 256 must be positive multiples of 8"), bad.toString());
        assertEquals("", bad.out());
    }

    @Test
    void trainRunsTheTinyModelOnTheCpuBackendAndReportsPlanAndMeasurement() {
        Cli.Run r = Cli.run("bench", "train", "--config", "tiny", "--device", "cpu", "--runs", "1", "--warmup", "0",
                "--accumulation", "2", "--te", "--threads", "2");
        assertEquals(0, r.exit(), r.toString());
        for (String line : new String[] {"tenmin bench train: tiny", "frozen weights:", "peak total:", "ops per micro-batch:",
                "FLOPs per micro-batch", "device: cpu (cpu backend, 2 threads)", "micro-batch:", "(on the host: gradients down",
                "utilisation:", "peak tensor storage:", "| cpu backend | tiny b2 16x16 | all | trained |"}) {
            assertTrue(r.out().contains(line), "missing '" + line + "' in\n" + r);
        }
    }

    /** On the torch backend the optimizer step runs on the device (here the CPU libtorch). */
    @Test
    @org.junit.jupiter.api.Tag("torch")
    void trainOnTheTorchBackendStepsTheOptimizerOnTheDevice() {
        tenmin.engine.backend.torch.TorchTesting.libTorchOrSkip();
        Cli.Run r = Cli.run("bench", "train", "--config", "tiny", "--device", "cpu", "--backend", "torch", "--runs", "1",
                "--warmup", "0", "--accumulation", "2", "--te", "--op-times");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("(on the device: clip and ClybW over "), r.toString());
        // --op-times: one more micro-batch op by op, forward and backward, the costliest ops in a table
        assertTrue(r.out().contains("op times (one more micro-batch") && r.out().contains("  forward: ")
                && r.out().contains("  backward: ") && r.out().contains("| phase | op | calls | host ms | device ms |")
                && r.out().contains("| forward | convolution |"), r.toString());
    }

    @Test
    void trainPlanOfTheRecipeNeedsNoDevice() {
        Cli.Run r = Cli.run("bench", "train", "--plan", "--te");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("batch 8, latents 128x128 (1024x1024 images), checkpointing all, text encoders trained")
                && r.out().contains("U-Net bf16") && r.out().contains("peak total:"), r.toString());
        assertTrue(!r.out().contains("measured"), r.toString());
        // --fp8-base: the frozen weights at one byte a value (the text encoders' embeddings at two)
        Cli.Run fp8 = Cli.run("bench", "train", "--plan", "--te", "--fp8-base");
        assertEquals(0, fp8.exit(), fp8.toString());
        assertTrue(fp8.out().contains("U-Net bf16 (weights f8_e4m3), text encoders bf16 (weights f8_e4m3)")
                && fp8.out().contains("frozen weights: unet 2.39 GiB, text encoders 876.5 MiB"), fp8.toString());
    }

    @Test
    void trainRefusesFullSizeOnTheCpuAndBadSizes() {
        Cli.Run cpu = Cli.run("bench", "train", "--device", "cpu");
        assertEquals(2, cpu.exit(), cpu.toString());
        assertTrue(cpu.err().contains("needs a GPU") && cpu.err().contains("--plan"), cpu.toString());
        Cli.Run latent = Cli.run("bench", "train", "--plan", "--latent", "100x7y");
        assertEquals(2, latent.exit(), latent.toString());
        assertTrue(latent.err().contains("--latent 100x7y"), latent.toString());
        Cli.Run odd = Cli.run("bench", "train", "--plan", "--latent", "130");
        assertEquals(2, odd.exit(), odd.toString());
        assertTrue(odd.err().contains("not a multiple of 4"), odd.toString());
        Cli.Run block = Cli.run("bench", "train", "--plan", "--checkpointing", "output_blocks.12");
        assertEquals(2, block.exit(), block.toString());
        assertTrue(block.err().contains("--checkpointing") && block.err().contains("output_blocks.12"), block.toString());
    }

    @Test
    void helpListsTheTargetAndExitCodes() {
        Cli.Run r = Cli.run("bench", "--help");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("matmul") && r.out().contains("step") && r.out().contains("Exit codes"), r.toString());
    }
}
