package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import tenmin.engine.api.Device;
import tenmin.lora.LoConPreset;
import tenmin.lora.LoConRanks;
import tenmin.models.SdxlConfig;
import tenmin.models.SdxlDtypes;
import tenmin.models.sdxl.CheckpointPolicy;

/**
 * {@code --checkpointing auto}: the candidates (by resolution level, from SDXL's real block layout), the choice
 * of the first that fits, the budget, and the planned peaks of the tiny model, which must fall as more blocks are
 * checkpointed (the ordering the choice relies on).
 */
class AutoCheckpointingTest {

    @Test
    void candidatesGoFromNoneThroughTheMiddleAndTheCoarsestLevelsToAll() {
        List<String> c = CheckpointPolicy.autoCandidates(SdxlConfig.sdxl().unet()).stream()
                .map(CheckpointPolicy::toString).toList();
        // SDXL: input_blocks 1-2 + down 3 at 128², 4-5 + down 6 at 64², 7-8 at 32²; output_blocks 0-2 at 32²,
        // 3-5 at 64² (5 ends with the up-sampling), 6-8 at 128²
        assertEquals(List.of("none", "middle_block", "input_blocks.7-8,middle_block,output_blocks.0-2",
                "input_blocks.4-8,middle_block,output_blocks.0-5", "all"), c);
        for (String spec : c) {
            assertEquals(spec, CheckpointPolicy.parse(spec).toString(), "toString is what parse reads");
        }
        assertEquals("input_blocks.1-3,input_blocks.7,middle_block,output_blocks.0",
                CheckpointPolicy.parse("input_blocks.7,middle_block,input_blocks.3,input_blocks.1-2,output_blocks.0")
                        .toString());
    }

    @Test
    void takesTheFirstCandidateThatFitsAndAsksNoFurther() {
        List<CheckpointPolicy> candidates = CheckpointPolicy.autoCandidates(SdxlConfig.sdxl().unet());
        long[] peaks = {70, 58, 47, 30, 14};
        List<Integer> asked = new ArrayList<>();
        int i = AutoCheckpointing.choose(candidates, 50, c -> {
            int k = candidates.indexOf(c);
            asked.add(k);
            return peaks[k];
        });
        assertEquals(2, i);
        assertEquals(List.of(0, 1, 2), asked);
        assertEquals(0, AutoCheckpointing.choose(candidates, 100, c -> peaks[candidates.indexOf(c)]));
        assertEquals(4, AutoCheckpointing.choose(candidates, 10, c -> peaks[candidates.indexOf(c)]),
                "nothing fits: the last (all)");
    }

    @Test
    void budgetKeepsAFixedAndAProportionalHeadroom() {
        long gib = 1L << 30;
        // an 80 GB card with 79 GiB free: 79 - 2 - 0.15 * 80 = 65 GiB
        assertEquals(65 * gib, AutoCheckpointing.budget(79 * gib, 80 * gib));
        // a 24 GB card: 23.5 - 2 - 3.6 = 17.9 GiB, more than full checkpointing's 13.7 GiB at full size
        assertTrue(AutoCheckpointing.budget(23 * gib + gib / 2, 24 * gib) > 17 * gib);
    }

    @Test
    void plannedPeaksFallAsMoreBlocksAreCheckpointed() {
        SdxlConfig tiny = SdxlConfig.tiny();
        List<Long> peaks = new ArrayList<>();
        for (CheckpointPolicy p : CheckpointPolicy.autoCandidates(tiny.unet())) {
            TrainBenchmark.Setup setup = new TrainBenchmark.Setup("t", tiny, SdxlDtypes.fp32(), 2, 32, 32, p,
                    false, new LoConRanks(8, 4, 8, 4), LoConPreset.TextEncoderModules.FULL, 1, 1L);
            peaks.add(TrainBenchmark.plan(setup, Device.CPU).peakBytes());
        }
        for (int i = 1; i < peaks.size(); i++) {
            assertTrue(peaks.get(i) <= peaks.get(i - 1), "peaks " + peaks);
        }
        assertTrue(peaks.getLast() < peaks.getFirst(), "peaks " + peaks);
    }

    /** The optimizer's moments stay on the device only where the step fits with them; else they go to the host. */
    @Test
    void momentsGoToTheHostWhenTheStepWouldNotFitWithThem() {
        TrainBenchmark.Setup setup = new TrainBenchmark.Setup("t", SdxlConfig.tiny(), SdxlDtypes.fp32(), 2, 32, 32,
                CheckpointPolicy.all(), false, new LoConRanks(8, 4, 8, 4), LoConPreset.TextEncoderModules.FULL, 1, 1L);
        TrainBenchmark.Plan withMoments = TrainBenchmark.plan(setup, Device.cuda(0), 2);
        TrainBenchmark.Plan without = TrainBenchmark.plan(setup, Device.cuda(0), 0);
        long total = 80L << 30;
        long headroom = total - AutoCheckpointing.budget(total, total);   // what budget() keeps free on this card
        long roomy = withMoments.peakBytes() + headroom;
        long tight = withMoments.peakBytes() - 1 + headroom;
        assertTrue(AutoCheckpointing.momentsFit(withMoments, new long[] {roomy, total}));
        assertFalse(AutoCheckpointing.momentsFit(withMoments, new long[] {tight, total}));
        assertTrue(AutoCheckpointing.momentsFit(without, new long[] {tight, total}), "no moments planned on the device");
        assertTrue(AutoCheckpointing.momentsFit(withMoments, null), "no memory figure");
    }
}
