package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;

import org.junit.jupiter.api.Test;

/**
 * Training the full model on the CPU warns up front with the expected duration; the demo and the test
 * configurations (minutes at most) do not.
 */
class CpuTrainingWarningTest {
    @Test
    void theGuidesRunOnTwoCoresIsDaysAndSaysSo() {
        // the recipe's micro-batch: 8 images x 24.5 TFLOP (issue 4's count with recomputation); 400 micro-batches;
        // 2 cores at 50 GFLOP/s each: 1960 s per micro-batch, 784,000 s in all
        Optional<String> w = TrainSetup.cpuWarning(8 * 24.5e12, 400, 2);
        assertTrue(w.isPresent());
        String s = w.get();
        assertTrue(s.startsWith("WARNING: ") && s.contains("196.0 TFLOP") && s.contains("about 33 min on 2 cores")
                && s.contains("400 micro-batches") && s.contains("about 9.1 days") && s.contains("--device cuda"), s);
    }

    @Test
    void shortRunsDoNotWarn() {
        // the tiny model: 11.4 GFLOP per micro-batch (bench train --config tiny), 24 steps x 4 micro-batches
        assertTrue(TrainSetup.cpuWarning(11.4e9, 96, 2).isEmpty());
        // just under an hour: 3599 s
        assertTrue(TrainSetup.cpuWarning(3599 * 1e11, 1, 2).isEmpty());
        assertTrue(TrainSetup.cpuWarning(3601 * 1e11, 1, 2).isPresent());
    }
}
