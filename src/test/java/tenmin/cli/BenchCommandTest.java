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
        assertTrue(r.err().contains("unknown target 'train' (expected: matmul or step)"), r.toString());
        assertEquals("", r.out());
    }

    @Test
    void badRunCountIsAUsageError() {
        Cli.Run r = Cli.run("bench", "matmul", "--runs", "0");
        assertEquals(2, r.exit(), r.toString());
        assertTrue(r.err().contains("--runs"), r.toString());
    }

    @Test
    void helpListsTheTargetAndExitCodes() {
        Cli.Run r = Cli.run("bench", "--help");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().contains("matmul") && r.out().contains("step") && r.out().contains("Exit codes"), r.toString());
    }
}
