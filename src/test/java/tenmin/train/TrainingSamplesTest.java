package tenmin.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.models.SdxlConfig;
import tenmin.sample.PromptFile.SamplePrompt;
import tenmin.sample.SamplerKind;
import tenmin.sample.SdxlPipeline;

/**
 * What a training sample prompt asks of the pipeline, by kohya's rules (trainer-spec §11): guidance with the
 * negative prompt only above scale 1, sizes floored to the U-Net's grid, bad samplers and scales refused.
 */
class TrainingSamplesTest {
    private static final SdxlConfig TINY = SdxlConfig.tiny();

    private static SamplePrompt prompt(int width, int height, double scale, String sampler) {
        return new SamplePrompt(0, "ohwx, red disc", "blurry, lowres", width, height, 5L, 3, scale, sampler);
    }

    @Test
    void guidesWithTheNegativePromptOnlyAboveScaleOne() {
        SdxlPipeline.Settings guided = TrainingSamples.settings(prompt(64, 64, 7.5, "euler_a"), TINY);
        assertEquals("blurry, lowres", guided.negativePrompt());
        assertEquals(7.5, guided.cfgScale());
        for (double scale : new double[] {1.0, 0.5, 0.0}) {
            SdxlPipeline.Settings plain = TrainingSamples.settings(prompt(64, 64, scale, "euler_a"), TINY);
            assertEquals("", plain.negativePrompt(), "scale " + scale);
            assertEquals(1.0, plain.cfgScale(), "scale " + scale);
            assertEquals("ohwx, red disc", plain.prompt());
        }
    }

    @Test
    void floorsSizesToTheModelGridAndKeepsSamplerAndSteps() {
        int grid = TINY.vaeScale() * TINY.latentMultiple();
        SdxlPipeline.Settings s = TrainingSamples.settings(prompt(grid * 3 - 8, grid - 8, 7.5, "euler"), TINY);
        assertEquals(grid * 2, s.width());
        assertEquals(grid, s.height(), "at least one grid cell");
        assertEquals(SamplerKind.EULER, s.sampler().kind());
        assertEquals(3, s.sampler().steps());
    }

    @Test
    void refusesUnknownSamplersAndScalesThePipelineRejects() {
        InputException e = assertThrows(InputException.class,
                () -> TrainingSamples.settings(prompt(64, 64, 7.5, "k_lms_typo"), TINY));
        assertTrue(e.getMessage().contains("k_lms_typo"), e.getMessage());
        e = assertThrows(InputException.class, () -> TrainingSamples.settings(prompt(64, 64, 150, "euler_a"), TINY));
        assertTrue(e.getMessage().contains("CFG scale"), e.getMessage());
    }
}
