package tenmin.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import tenmin.testing.Cli;

/** {@code tenmin bench}: bad targets and options are usage errors; the measurement itself is not a test. */
class BenchCommandTest {
    @Test
    void unknownTargetIsAUsageError() {
        Cli.Run r = Cli.run("bench", "train");
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("unknown target 'train' (expected: matmul, step or sample)"), r.toString());
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
    void helpListsTheTargetAndExitCodes() {
        Cli.Run r = Cli.run("bench", "--help");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("matmul") && r.out().contains("step") && r.out().contains("Exit codes"), r.toString());
    }
}
