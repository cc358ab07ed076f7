package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.formats.SafetensorsFile;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;

/** The schedule and the Euler ancestral steps against diffusers 0.25 outputs (schedule.json, sampler-io). */
class SamplerFixtureTest {
    private static final NoiseSchedule SDXL = NoiseSchedule.sdxl();

    private static JsonNode schedule() throws IOException {
        return new ObjectMapper().readTree(Fixtures.require("schedule.json").toFile());
    }

    private static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }

    @Test
    void alphasCumprodMatchesDiffusersAndSgm() throws IOException {
        JsonNode ddpm = schedule().get("ddpm");
        float[] ours = SDXL.alphasCumprod();
        // diffusers computes in float32 like we do, with ATen's vectorised linspace: the same bits
        assertArrayEquals(floats(ddpm.get("alphas_cumprod")), ours, "alphas_cumprod vs diffusers float32");
        // sgm's float64 schedule differs from any float32 one by up to 4.7e-7 (fixtures README)
        Numerics.assertClose("alphas_cumprod vs sgm float64", new long[] {1000},
                floats(ddpm.get("alphas_cumprod_float64")), ours, 6e-7, 0);
    }

    @Test
    void eulerAncestralScheduleMatchesDiffusers() throws IOException {
        JsonNode ea = schedule().get("euler_a");
        SigmaSchedule s = SigmaSchedule.linspace(SDXL, 30);
        float[] t = new float[30];
        for (int i = 0; i < 30; i++) {
            t[i] = (float) s.timestep(i);
        }
        Numerics.assertClose("timesteps", new long[] {30}, floats(ea.get("timesteps")), t, 0, 0);
        Numerics.assertClose("sigmas", new long[] {31}, floats(ea.get("sigmas")), s.sigmas(), 0, 2e-7);
        assertEquals(ea.get("init_noise_sigma").asDouble(), s.initNoiseSigma(), 2e-6);
        Sampler sampler = Sampler.create(Sampler.Settings.of(SamplerKind.EULER_A, 30), SDXL);
        assertEquals(s, sampler.schedule());
        assertEquals(s.initNoiseSigma(), sampler.initNoiseSigma());
    }

    @Test
    void eulerAncestralStepsMatchDiffusers() {
        SigmaSchedule s = SigmaSchedule.linspace(SDXL, 30);
        try (SafetensorsFile io = SafetensorsFile.open(Fixtures.require("sampler-io.safetensors"))) {
            long[] shape = io.info("ea.x_init").shape();
            float[] x = io.readFloats("ea.x_init");
            for (int i = 0; i < 3; i++) {
                String p = "ea.step" + i + ".";
                Numerics.assertRelClose(p + "scaled_input", shape, io.readFloats(p + "scaled_input"),
                        Samplers.scaleModelInput(x, s.sigma(i)), 1e-6);
                float[] next = Samplers.EulerAncestral.step(x, io.readFloats(p + "eps"), s.sigma(i), s.sigma(i + 1),
                        io.readFloats(p + "noise"));
                Numerics.assertRelClose(p + "x_next", shape, io.readFloats(p + "x_next"), next, 1e-6);
                x = io.readFloats(p + "x_next");
            }
        }
    }

    @Test
    void eulerAncestralLoopReplaysTheStoredCalls() {
        // the loop feeds the stored eps and noise back; its result after 3 steps must equal step 2's x_next
        try (SafetensorsFile io = SafetensorsFile.open(Fixtures.require("sampler-io.safetensors"))) {
            SigmaSchedule full = SigmaSchedule.linspace(SDXL, 30);
            int[] call = {0};
            float[][] eps = new float[3][];
            float[][] noise = new float[3][];
            for (int i = 0; i < 3; i++) {
                eps[i] = io.readFloats("ea.step" + i + ".eps");
                noise[i] = io.readFloats("ea.step" + i + ".noise");
            }
            Denoiser model = (input, t) -> {
                int i = call[0];
                Numerics.assertRelClose("model input " + i, null, io.readFloats("ea.step" + i + ".scaled_input"), input, 1e-6);
                assertEquals(full.timestep(i), t, "timestep of call " + i);
                return eps[i];
            };
            int[] draw = {0};
            GaussianSource stored = out -> System.arraycopy(noise[draw[0]++], 0, out, 0, out.length);
            // a 3-step prefix of the 30-step schedule, driven through the public loop
            double[] t3 = {full.timestep(0), full.timestep(1), full.timestep(2)};
            float[] s3 = {full.sigma(0), full.sigma(1), full.sigma(2), full.sigma(3)};
            Sampler prefix = new Samplers.EulerAncestral(new SigmaSchedule(t3, s3));
            float[] out = prefix.run(io.readFloats("ea.x_init"), (input, t) -> {
                float[] e = model.predictNoise(input, t);
                call[0]++;
                return e;
            }, stored);
            Numerics.assertRelClose("x after 3 steps", null, io.readFloats("ea.step2.x_next"), out, 2e-6);
            assertEquals(3, call[0]);
            assertEquals(3, draw[0]);
        }
    }
}
