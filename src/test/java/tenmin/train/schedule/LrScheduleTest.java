package tenmin.train.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.testing.Fixtures;

class LrScheduleTest {

    @Test
    void cosineWithFractionalCyclesMatchesTransformersFixture() throws Exception {
        Path p = Fixtures.require("schedule.json");
        JsonNode values = new ObjectMapper().readTree(p.toFile()).get("lr_lambda").get("values");
        LrSchedule s = new LrSchedule(LrSchedule.Kind.COSINE, 0, 80, 0.375, 1, 1e-7, 3e-4);
        assertEquals(81, values.size());
        for (int k = 0; k < values.size(); k++) {
            assertEquals(values.get(k).asDouble(), s.factor(k), 1e-12, "lambda(" + k + ")");
        }
        // optimizer step s uses lambda(s-1): step 1 has the full lr, step 80 lambda(79)
        assertEquals(3e-4, s.lrForStep(3e-4, 1), 0);
        assertEquals(3e-4 * values.get(79).asDouble(), s.lrForStep(3e-4, 80), 1e-18);
    }

    @Test
    void warmupIsLinearFromZero() {
        for (LrSchedule.Kind k : new LrSchedule.Kind[] {LrSchedule.Kind.CONSTANT_WITH_WARMUP, LrSchedule.Kind.LINEAR,
                LrSchedule.Kind.COSINE, LrSchedule.Kind.COSINE_WITH_RESTARTS, LrSchedule.Kind.POLYNOMIAL}) {
            LrSchedule s = LrSchedule.of(k, 10, 110);
            assertEquals(0.0, s.factor(0), 0, k.flagName());
            assertEquals(0.3, s.factor(3), 1e-15, k.flagName());
            assertEquals(1.0, s.factor(10), 1e-15, k.flagName());
        }
        assertEquals(1.0, LrSchedule.of(LrSchedule.Kind.CONSTANT, 0, 100).factor(0));
    }

    @Test
    void decayShapesAfterWarmup() {
        // linear: halfway through the 100 decay steps -> 0.5; at the end 0
        LrSchedule lin = LrSchedule.of(LrSchedule.Kind.LINEAR, 10, 110);
        assertEquals(0.5, lin.factor(60), 1e-15);
        assertEquals(0.0, lin.factor(110), 0);
        assertEquals(0.0, lin.factor(200), 0);
        // cosine with the default half cycle: cos(pi/2) at halfway -> 0.5; 0 at the end
        LrSchedule cos = LrSchedule.of(LrSchedule.Kind.COSINE, 0, 100);
        assertEquals(0.5, cos.factor(50), 1e-12);
        assertEquals(0.0, cos.factor(100), 1e-12);
        // two hard restarts over 100 steps: progress 0.25 -> half of the first cycle -> 0.5; restart at 50
        LrSchedule restarts = new LrSchedule(LrSchedule.Kind.COSINE_WITH_RESTARTS, 0, 100, 2, 1, 1e-7, 1);
        assertEquals(0.5, restarts.factor(25), 1e-12);
        assertEquals(1.0, restarts.factor(50), 1e-12);
        assertEquals(0.0, restarts.factor(100), 0);
        // polynomial power 2 from lr0 = 1e-3 to lrEnd = 1e-5: halfway (1e-3-1e-5)*0.25 + 1e-5
        LrSchedule poly = new LrSchedule(LrSchedule.Kind.POLYNOMIAL, 0, 100, 1, 2, 1e-5, 1e-3);
        assertEquals(((1e-3 - 1e-5) * 0.25 + 1e-5) / 1e-3, poly.factor(50), 1e-12);
        assertEquals(1e-5 / 1e-3, poly.factor(101), 1e-15);
        assertThrows(IllegalArgumentException.class,
                () -> new LrSchedule(LrSchedule.Kind.POLYNOMIAL, 0, 100, 1, 1, 1e-3, 1e-3));
    }

    /**
     * The schedulers of transformers 4.44 that the reference reaches through get_scheduler_fix, their lr lambdas
     * written out here: inverse_sqrt, cosine_with_min_lr (num_cycles/2 from the reference) and warmup_stable_decay.
     */
    @Test
    void inverseSqrtMinLrCosineAndWarmupStableDecay() {
        LrSchedule inv = new LrSchedule(LrSchedule.Kind.INVERSE_SQRT, 10, 100, 0.5, 1, 0, 1, 0, 0, 0);
        LrSchedule invTau = new LrSchedule(LrSchedule.Kind.INVERSE_SQRT, 10, 100, 0.5, 1, 0, 1, 0, 0, 40);
        LrSchedule minLr = new LrSchedule(LrSchedule.Kind.COSINE_WITH_MIN_LR, 5, 100, 0.5, 1, 0, 1, 0, 0.1, 0);
        LrSchedule wsd = new LrSchedule(LrSchedule.Kind.WARMUP_STABLE_DECAY, 10, 100, 0.5, 1, 0, 1, 30, 0.05, 0);
        for (int k = 0; k <= 110; k++) {
            double warm10 = k / 10.0;
            assertEquals(k < 10 ? warm10 : 1 / Math.sqrt((k + 10 - 10) / 10.0), inv.factor(k), 1e-12, "inverse_sqrt " + k);
            assertEquals(k < 10 ? warm10 : 1 / Math.sqrt((k + 40 - 10) / 40.0), invTau.factor(k), 1e-12,
                    "inverse_sqrt τ 40 " + k);
            double p = (k - 5) / 95.0;
            double cos = 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * p));
            assertEquals(k < 5 ? k / 5.0 : Math.max(0, cos * 0.9 + 0.1), minLr.factor(k), 1e-12, "min lr " + k);
            double want;
            if (k < 10) {
                want = warm10;
            } else if (k < 70) {
                want = 1;
            } else if (k < 100) {
                double q = (k - 70) / 30.0;
                want = 0.95 * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * q))) + 0.05;
            } else {
                want = 0.05;
            }
            assertEquals(want, wsd.factor(k), 1e-12, "warmup_stable_decay " + k);
        }
        assertEquals(1 / Math.sqrt(1 + 5 / 10_000.0), new LrSchedule(LrSchedule.Kind.INVERSE_SQRT, 0, 100, 0.5, 1, 0, 1,
                0, 0, 0).factor(5), 1e-12, "without warm-up the timescale is 10000");
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule(LrSchedule.Kind.WARMUP_STABLE_DECAY, 10, 100,
                0.5, 1, 0, 1, 95, 0, 0));
    }

    @Test
    void parsesFlagNames() {
        assertEquals(LrSchedule.Kind.COSINE_WITH_RESTARTS, LrSchedule.Kind.parse("cosine_with_restarts"));
        assertEquals(null, LrSchedule.Kind.parse("Cosine"));
    }
}
