package tenmin.train.schedule;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    /**
     * diffusers' get_piecewise_constant_schedule: after k steps, the multiplier of the first rule (sorted by step)
     * whose step is greater than k, else the last bare value. Expected values written out by hand for
     * "1:10,0.1:20,0.01:30,0.005".
     */
    @Test
    void piecewiseConstantChangesAtEachRuleStep() {
        LrSchedule s = LrSchedule.piecewise(StepRules.parse("1:10,0.1:20,0.01:30,0.005"), 100);
        long[] k = {0, 1, 9, 10, 11, 19, 20, 29, 30, 31, 100, 5000};
        double[] want = {1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.005, 0.005, 0.005, 0.005};
        for (int i = 0; i < k.length; i++) {
            assertEquals(want[i], s.factor(k[i]), 0, "lambda(" + k[i] + ")");
        }
        // optimizer step s uses lambda(s-1): steps 1..10 at the full lr, step 11 at a tenth
        assertEquals(3e-4, s.lrForStep(3e-4, 10), 0);
        assertEquals(3e-4 * 0.1, s.lrForStep(3e-4, 11), 0);
        assertEquals(3e-4 * 0.005, s.lrForStep(3e-4, 31), 0);
        // the rules are sorted by step: their order in the text does not matter
        LrSchedule shuffled = LrSchedule.piecewise(StepRules.parse(" 0.01:30 , 1:10,0.1: 20,0.005 "), 100);
        for (long j = 0; j < 40; j++) {
            assertEquals(s.factor(j), shuffled.factor(j), 0, "lambda(" + j + ")");
        }
        // a bare multiplier alone is a constant factor; a zero rule step is never below k
        assertEquals(0.5, LrSchedule.piecewise(StepRules.parse("0.5"), 10).factor(0), 0);
        assertEquals(0.25, LrSchedule.piecewise(StepRules.parse("2:0,0.25"), 10).factor(0), 0);
        assertEquals(2.0, LrSchedule.piecewise(StepRules.parse("2:1,1e-1"), 10).factor(0), 0);
        assertEquals(0.1, LrSchedule.piecewise(StepRules.parse("2:1,1e-1"), 10).factor(1), 0);
    }

    @Test
    void piecewiseConstantHasNoWarmup() {
        // the reference hands diffusers only step_rules: a warm-up given to the schedule changes nothing
        LrSchedule withWarmup = new LrSchedule(LrSchedule.Kind.PIECEWISE_CONSTANT, 5, 100, 0, 1, 0, 1, 0, 0, 0,
                StepRules.parse("1:10,0.5"));
        assertEquals(1.0, withWarmup.factor(0), 0);
        assertEquals(1.0, withWarmup.factor(4), 0);
        assertEquals(0.5, withWarmup.factor(10), 0);
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.of(LrSchedule.Kind.PIECEWISE_CONSTANT, 0, 10));
        assertThrows(IllegalArgumentException.class, () -> new LrSchedule(LrSchedule.Kind.COSINE, 0, 10, 0.5, 1, 0, 1,
                0, 0, 0, StepRules.parse("0.5")));
    }

    @Test
    void malformedStepRulesAreRefusedWithTheReason() {
        String[][] bad = {
                {"1:10,0.1:20", "last item '0.1:20' must be a bare multiplier"},
                {"1:10:20,0.5", "'1:10:20' is not multiplier:step"},
                {"1,0.5", "'1' is not multiplier:step"},
                {"x:10,0.5", "'x' is not a multiplier"},
                {"1:ten,0.5", "'ten' in '1:ten' is not a whole step number"},
                {"1:2.5,0.5", "'2.5' in '1:2.5' is not a whole step number"},
                {"1:10,0.1:10,0.5", "step 10 has two rules"},
                {"1:-3,0.5", "step -3 is negative"},
                {"-1:10,0.5", "multiplier -1 must be zero or positive"},
                {"1:10,nan", "'nan' is not a multiplier"},
                {"1:10,1.0f", "'1.0f' is not a multiplier"},
                {"", "'' is not a multiplier"},
        };
        for (String[] b : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> StepRules.parse(b[0]), b[0]);
            assertTrue(e.getMessage().contains(b[1]), b[0] + ": " + e.getMessage());
        }
    }

    @Test
    void parsesFlagNames() {
        assertEquals(LrSchedule.Kind.PIECEWISE_CONSTANT, LrSchedule.Kind.parse("piecewise_constant"));
        assertEquals(LrSchedule.Kind.COSINE_WITH_RESTARTS, LrSchedule.Kind.parse("cosine_with_restarts"));
        assertEquals(null, LrSchedule.Kind.parse("Cosine"));
    }
}
