package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.Arrays;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import tenmin.core.InputException;
import tenmin.testing.Fixtures;
import tenmin.testing.Numerics;
import tenmin.testing.Reference;

/**
 * The samplers against mathematics written here independently of them:
 *
 * <ul>
 * <li>For Gaussian data x0 ~ N(μ, s²) the ideal denoiser is {@code D(x, σ) = μ + s²/(s²+σ²)·(x − μ)} and
 *     the probability-flow ODE {@code dx/dσ = (x − D)/σ} has the exact solution
 *     {@code x(σ) = μ + (x(σ₀) − μ)·sqrt(s²+σ²)/sqrt(s²+σ₀²)}: the deterministic samplers must converge to
 *     it, DPM++ 2M (second order) much faster than Euler.
 * <li>One DPM++ 2M step against diffusers' DPM-Solver++ midpoint update written in the VP
 *     parameterisation (x_vp = α·x, α = 1/sqrt(1+σ²)); one DDIM step against the Euler step in σ space
 *     that it equals; Karras sigmas against the formula of Karras et al. (2022), eq. 5.
 * </ul>
 * The σ table comes from the float64 ᾱ of schedule.json, not from {@link NoiseSchedule}.
 */
class SamplerMathTest {
    private static double[] trainSigma; // (1000) sqrt((1-ᾱ)/ᾱ) from sgm's float64 ᾱ
    private static double[] alphaBar;   // (1000)
    private static final NoiseSchedule SDXL = NoiseSchedule.sdxl();
    private static final double MU = 0.3;
    private static final double S = 0.8;
    private static final int N = 4 * 8 * 8;

    @BeforeAll
    static void loadSigmas() throws IOException {
        alphaBar = fixtureAlphaBar();
        trainSigma = new double[alphaBar.length];
        for (int i = 0; i < alphaBar.length; i++) {
            trainSigma[i] = Math.sqrt((1 - alphaBar[i]) / alphaBar[i]);
        }
    }

    /** sgm's float64 ᾱ (1000) from schedule.json: the σ tables of the sampler tests come from here, not from {@link NoiseSchedule}. */
    static double[] fixtureAlphaBar() {
        return Fixtures.ddpmSchedule("alphas_cumprod_float64");
    }

    /** σ at a fractional timestep, linear interpolation (diffusers). */
    private static double sigmaLinear(double t) {
        int j = (int) Math.min(Math.floor(t), 998);
        return trainSigma[j] + (trainSigma[j + 1] - trainSigma[j]) * (t - j);
    }

    /** σ at a fractional timestep, log-linear interpolation (k-diffusion). */
    private static double sigmaLogLinear(double t) {
        int j = (int) Math.min(Math.floor(t), 998);
        return Math.exp(Math.log(trainSigma[j]) + (Math.log(trainSigma[j + 1]) - Math.log(trainSigma[j])) * (t - j));
    }

    /** Expected σ of each step: linspace timesteps or Karras (ρ = 7). */
    private static double[] expectedSigmas(ScheduleType type, int steps) {
        double[] s = new double[steps];
        for (int i = 0; i < steps; i++) {
            if (type == ScheduleType.NORMAL) {
                s[i] = sigmaLinear(999.0 * (steps - 1 - i) / (steps - 1));
            } else {
                double lo = Math.pow(trainSigma[0], 1 / 7.0);
                double hi = Math.pow(trainSigma[999], 1 / 7.0);
                s[i] = Math.pow(hi + (double) i / (steps - 1) * (lo - hi), 7);
            }
        }
        return s;
    }

    private static double ideal(double x, double sigma) {
        return MU + S * S / (S * S + sigma * sigma) * (x - MU);
    }

    /** The ideal ε predictor for σ-samplers; knows σ of call i from the test's own schedule. */
    private static Denoiser idealSigmaDenoiser(double[] sigmas, int[] calls) {
        return (input, t) -> {
            double sigma = sigmas[calls[0]++];
            float[] eps = new float[input.length];
            for (int i = 0; i < input.length; i++) {
                double x = input[i] * Math.sqrt(sigma * sigma + 1);
                eps[i] = (float) ((x - ideal(x, sigma)) / sigma);
            }
            return eps;
        };
    }

    private static float[] exactOdeEnd(float[] xStart, double sigmaStart) {
        float[] out = new float[xStart.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) (MU + (xStart[i] - MU) * S / Math.sqrt(S * S + sigmaStart * sigmaStart));
        }
        return out;
    }

    /** Runs a sampler from seeded noise with the ideal denoiser; returns {start, output}. */
    private static float[][] runIdeal(SamplerKind kind, ScheduleType type, int steps, long seed) {
        Sampler sampler = Sampler.create(Sampler.Settings.of(kind, steps, type), SDXL);
        double[] sigmas = expectedSigmas(type, steps);
        float[] x = sampler.initialLatents(new TorchGenerator(seed), N);
        int[] calls = {0};
        float[] out = sampler.run(x, idealSigmaDenoiser(sigmas, calls), new TorchGenerator(seed + 1));
        assertEquals(steps, calls[0], "denoiser calls");
        return new float[][] {x, out};
    }

    private static double odeError(SamplerKind kind, ScheduleType type, int steps) {
        float[][] r = runIdeal(kind, type, steps, 11);
        return Numerics.diff(exactOdeEnd(r[0], expectedSigmas(type, steps)[0]), r[1]).maxAbs();
    }

    /** The test's own Euler (k-diffusion sample_euler) in double: x += (x − D)/σ·(σ_next − σ). */
    private static double[] referenceEuler(float[] start, double[] sigmas) {
        double[] x = Reference.d(start);
        for (int i = 0; i < sigmas.length; i++) {
            double next = i + 1 < sigmas.length ? sigmas[i + 1] : 0;
            for (int j = 0; j < x.length; j++) {
                x[j] += (x[j] - ideal(x[j], sigmas[i])) / sigmas[i] * (next - sigmas[i]);
            }
        }
        return x;
    }

    /** The test's own DPM++ 2M (k-diffusion sample_dpmpp_2m) in double. */
    private static double[] referenceDpm2m(float[] start, double[] sigmas) {
        double[] x = Reference.d(start);
        double[] old = null;
        for (int i = 0; i < sigmas.length; i++) {
            double sg = sigmas[i];
            double next = i + 1 < sigmas.length ? sigmas[i + 1] : 0;
            double[] den = new double[x.length];
            for (int j = 0; j < x.length; j++) {
                den[j] = ideal(x[j], sg);
            }
            if (next == 0) {
                x = den;
            } else {
                double h = Math.log(sg) - Math.log(next);
                double c = -Math.expm1(-h);
                for (int j = 0; j < x.length; j++) {
                    double d = den[j];
                    if (old != null) {
                        double r = (Math.log(sigmas[i - 1]) - Math.log(sg)) / h;
                        d = (1 + 1 / (2 * r)) * den[j] - 1 / (2 * r) * old[j];
                    }
                    x[j] = next / sg * x[j] + c * d;
                }
            }
            old = den;
        }
        return x;
    }

    @Test
    void deterministicSamplersFollowTheirFormulas() {
        for (ScheduleType type : ScheduleType.values()) {
            double[] sigmas = expectedSigmas(type, 30);
            float[][] euler = runIdeal(SamplerKind.EULER, type, 30, 21);
            Numerics.assertClose("euler " + type, null, Reference.f(referenceEuler(euler[0], sigmas)), euler[1], 2e-4, 0);
            float[][] dpm = runIdeal(SamplerKind.DPMPP_2M, type, 30, 22);
            Numerics.assertClose("dpm++ 2m " + type, null, Reference.f(referenceDpm2m(dpm[0], sigmas)), dpm[1], 2e-4, 0);
        }
    }

    @Test
    void deterministicSamplersConvergeToTheOdeSolution() {
        // bounds from the discretisation error of these schedules (values are O(1)); a wrong sign or a
        // missing term gives errors of order 1
        for (ScheduleType type : ScheduleType.values()) {
            double euler30 = odeError(SamplerKind.EULER, type, 30);
            double euler60 = odeError(SamplerKind.EULER, type, 60);
            double dpm30 = odeError(SamplerKind.DPMPP_2M, type, 30);
            double dpm60 = odeError(SamplerKind.DPMPP_2M, type, 60);
            String msg = type + ": euler " + euler30 + " / " + euler60 + ", dpm++2m " + dpm30 + " / " + dpm60;
            assertTrue(euler30 < 0.15, msg);
            // first order: doubling the steps about halves the error
            assertTrue(euler30 / euler60 > 1.6 && euler30 / euler60 < 2.4, msg);
            // DPM++ 2M is second order in the interior; the first and last steps are first order
            assertTrue(dpm30 / dpm60 > 2.5, msg);
            assertTrue(dpm60 < euler60 / 1.5, msg);
        }
        assertTrue(odeError(SamplerKind.DPMPP_2M, ScheduleType.KARRAS, 30) < 0.02);
    }

    @Test
    void ddimSolvesTheGaussianOde() {
        int steps = 30;
        Sampler ddim = Sampler.create(Sampler.Settings.of(SamplerKind.DDIM, steps), SDXL);
        assertEquals(1f, ddim.initNoiseSigma());
        int[] ts = ((Samplers.Ddim) ddim).timesteps();
        // "leading" spacing: 957, 924, ..., 0
        assertEquals(957, ts[0]);
        assertEquals(0, ts[steps - 1]);
        float[] x = ddim.initialLatents(new TorchGenerator(3), N);
        int[] calls = {0};
        Denoiser model = (input, t) -> {
            assertEquals(ts[calls[0]++], t, "DDIM timestep");
            double a = alphaBar[(int) t];
            double sigma = Math.sqrt((1 - a) / a);
            float[] eps = new float[input.length];
            for (int i = 0; i < input.length; i++) {
                double xve = input[i] / Math.sqrt(a);
                eps[i] = (float) ((xve - ideal(xve, sigma)) / sigma);
            }
            return eps;
        };
        float[] out = ddim.run(x, model, new TorchGenerator(4));
        float[] xve = new float[N];
        for (int i = 0; i < N; i++) {
            xve[i] = (float) (x[i] / Math.sqrt(alphaBar[957]));
        }
        // η = 0 DDIM is Euler in σ space on its own timesteps, ending at σ = 0
        double[] sigmas = new double[steps];
        for (int i = 0; i < steps; i++) {
            sigmas[i] = trainSigma[ts[i]];
        }
        Numerics.assertClose("ddim vs euler on its sigmas", null, Reference.f(referenceEuler(xve, sigmas)), out, 2e-4, 0);
        double err = Numerics.diff(exactOdeEnd(xve, trainSigma[957]), out).maxAbs();
        assertTrue(err < 0.15, "DDIM error " + err);
    }

    /** A Gaussian source that remembers what it handed out. */
    private static final class Recording implements GaussianSource {
        final TorchGenerator g;
        final java.util.List<float[]> draws = new java.util.ArrayList<>();

        Recording(long seed) {
            g = new TorchGenerator(seed);
        }

        @Override
        public void fill(float[] out) {
            g.fill(out);
            draws.add(out.clone());
        }
    }

    private static double[] eulerAncestralStd(int steps, int n) {
        Sampler ea = Sampler.create(Sampler.Settings.of(SamplerKind.EULER_A, steps), SDXL);
        double[] sigmas = expectedSigmas(ScheduleType.NORMAL, steps);
        int[] calls = {0};
        Recording noise = new Recording(6);
        float[] start = ea.initialLatents(new TorchGenerator(5), n);
        float[] out = ea.run(start, idealSigmaDenoiser(sigmas, calls), noise);
        // the test's own ancestral loop (diffusers formula) on the same noise draws, in double
        double[] x = Reference.d(start);
        for (int i = 0; i < steps; i++) {
            double a = sigmas[i];
            double b = i + 1 < steps ? sigmas[i + 1] : 0;
            double up = Math.sqrt(b * b * (a * a - b * b) / (a * a));
            double down = Math.sqrt(b * b - up * up);
            float[] z = noise.draws.get(i);
            for (int j = 0; j < n; j++) {
                x[j] += (x[j] - ideal(x[j], a)) / a * (down - a) + z[j] * up;
            }
        }
        Numerics.assertClose("euler a, " + steps + " steps", null, Reference.f(x), out, 5e-4, 0);
        double mean = 0;
        double sq = 0;
        for (float v : out) {
            mean += v;
            sq += (double) v * v;
        }
        mean /= n;
        return new double[] {mean, Math.sqrt(sq / n - mean * mean)};
    }

    @Test
    void eulerAncestralFollowsItsFormulaAndSamplesTheData() {
        eulerAncestralStd(30, N);
        // with many steps the output is distributed like the data, N(μ, s²) (start noise has mean 0, so the
        // mean is pulled towards 0 by s/σ_max)
        double[] ms = eulerAncestralStd(300, 16384);
        assertEquals(MU, ms[0], 0.03);
        assertEquals(S, ms[1], 0.03);
    }

    @Test
    void dpmpp2mStepMatchesTheVpFormulation() {
        // diffusers DPMSolverMultistepScheduler (dpmsolver++, midpoint), variance preserving:
        //   α_t = 1/sqrt(1+σ²), σ_t = σ·α_t, λ = log α_t − log σ_t, h = λ_t − λ_s0, r0 = (λ_s0 − λ_s1)/h
        //   D0 = m0, D1 = (m0 − m1)/r0,  x_t = (σ_t/σ_s0)·x − α_t·(e^{−h} − 1)·D0 − ½·α_t·(e^{−h} − 1)·D1
        float sPrev = 9.8f;
        float s = 8.2f;
        float sNext = 6.9f;
        float[] x = new TorchGenerator(1).next(32);
        float[] m0 = new TorchGenerator(2).next(32);
        float[] m1 = new TorchGenerator(3).next(32);
        for (int i = 0; i < 32; i++) {
            x[i] *= s;
        }
        float[] ours = Samplers.DpmPp2m.step(x, m0, m1, sPrev, s, sNext);
        float[] ours1 = Samplers.DpmPp2m.step(x, m0, null, 0, s, sNext);
        double aS = 1 / Math.sqrt(1 + (double) s * s);
        double aT = 1 / Math.sqrt(1 + (double) sNext * sNext);
        double aP = 1 / Math.sqrt(1 + (double) sPrev * sPrev);
        double lamS = Math.log(aS) - Math.log(s * aS);
        double lamT = Math.log(aT) - Math.log(sNext * aT);
        double lamP = Math.log(aP) - Math.log(sPrev * aP);
        double h = lamT - lamS;
        double r0 = (lamS - lamP) / h;
        float[] expected = new float[32];
        float[] expected1 = new float[32];
        for (int i = 0; i < 32; i++) {
            double xvp = x[i] * aS;
            double d1 = (m0[i] - m1[i]) / r0;
            double first = (sNext * aT) / (s * aS) * xvp - aT * (Math.exp(-h) - 1) * m0[i];
            expected[i] = (float) ((first - 0.5 * aT * (Math.exp(-h) - 1) * d1) / aT);
            expected1[i] = (float) (first / aT);
        }
        Numerics.assertRelClose("dpm++ 2m second order", new long[] {32}, expected, ours, 1e-5);
        Numerics.assertRelClose("dpm++ 2m first order", new long[] {32}, expected1, ours1, 1e-5);
        // to σ = 0 the step returns the denoised estimate
        assertArrayEquals(m0, Samplers.DpmPp2m.step(x, m0, m1, sPrev, s, 0f));
    }

    @Test
    void ddimStepIsAnEulerStepInSigmaSpace() {
        // η = 0: x_vp/sqrt(ᾱ) moves by (σ_prev − σ_t)·ε
        int t = 500;
        int prev = 467;
        float aT = SDXL.alphaCumprod(t);
        float aP = SDXL.alphaCumprod(prev);
        float[] x = new TorchGenerator(8).next(64);
        float[] eps = new TorchGenerator(9).next(64);
        float[] out = Samplers.Ddim.step(x, eps, aT, aP, 0, false, null);
        double sT = Math.sqrt((1 - aT) / (double) aT);
        double sP = Math.sqrt((1 - aP) / (double) aP);
        float[] expected = new float[64];
        for (int i = 0; i < 64; i++) {
            expected[i] = (float) ((x[i] / Math.sqrt(aT) + (sP - sT) * eps[i]) * Math.sqrt(aP));
        }
        Numerics.assertRelClose("ddim vs euler", new long[] {64}, expected, out, 1e-5);
        // the clamp of x0 (kohya's clip_sample) only changes values whose x0 leaves [-1, 1]
        float[] big = new float[64];
        Arrays.fill(big, 50f);
        float[] clipped = Samplers.Ddim.step(big, new float[64], aT, aP, 0, true, null);
        assertEquals(Math.sqrt(aP), clipped[0], 1e-5);
    }

    @Test
    void karrasSigmasFollowTheFormulaAndTimestepsInvertTheSchedule() {
        SigmaSchedule k = SigmaSchedule.karras(SDXL, 20);
        double[] expected = expectedSigmas(ScheduleType.KARRAS, 20);
        for (int i = 0; i < 20; i++) {
            assertEquals(expected[i], k.sigma(i), 5e-5 * expected[i], "karras sigma " + i);
            // k-diffusion's sigma_to_t is the inverse of log-linear interpolation
            assertEquals(k.sigma(i), sigmaLogLinear(k.timestep(i)), 5e-5 * k.sigma(i), "timestep " + i);
        }
        assertEquals(0f, k.sigma(20));
        assertEquals(trainSigma[999], k.initNoiseSigma(), 1e-5);
        assertEquals(999, k.timestep(0), 1e-3);
        assertEquals(0, k.timestep(19), 1e-3);
    }

    @Test
    void linspaceTimestepsAndSigmasFollowDiffusers() {
        SigmaSchedule s = SigmaSchedule.linspace(SDXL, 7);
        for (int i = 0; i < 7; i++) {
            double t = 999.0 * (6 - i) / 6;
            assertEquals((float) t, s.timestep(i), 0);
            // float32 ᾱ near 1 loses digits in 1 − ᾱ: σ differs from the float64 one by up to ~2e-5 relative
            assertEquals(sigmaLinear(t), s.sigma(i), 5e-5 * sigmaLinear(t));
        }
        SigmaSchedule one = SigmaSchedule.linspace(SDXL, 1);
        assertEquals(0, one.timestep(0));
    }

    @Test
    void sameSeedSameLatentsForEverySampler() {
        Denoiser model = (input, t) -> {
            float[] eps = new float[input.length];
            for (int i = 0; i < eps.length; i++) {
                eps[i] = (float) (0.1 * input[i] + Math.sin(t * 0.01 + i));
            }
            return eps;
        };
        for (SamplerKind kind : SamplerKind.values()) {
            Sampler s = Sampler.create(Sampler.Settings.of(kind, 8), SDXL);
            float[] a = s.run(s.initialLatents(new TorchGenerator(42), N), model, new TorchGenerator(42));
            float[] b = s.run(s.initialLatents(new TorchGenerator(42), N), model, new TorchGenerator(42));
            float[] c = s.run(s.initialLatents(new TorchGenerator(43), N), model, new TorchGenerator(43));
            assertArrayEquals(a, b, kind + " is reproducible");
            assertFalse(Arrays.equals(a, c), kind + " depends on the seed");
        }
    }

    @Test
    void runDoesNotModifyItsInput() {
        Sampler s = Sampler.create(Sampler.Settings.of(SamplerKind.DPMPP_2M, 4), SDXL);
        float[] x = s.initialLatents(new TorchGenerator(1), N);
        float[] copy = x.clone();
        s.run(x, (input, t) -> {
            input[0] = 99; // a careless model may scribble on its input; the sampler's x must not change
            return new float[input.length];
        }, new TorchGenerator(1));
        assertArrayEquals(copy, x);
    }

    @Test
    void settingsRejectBadValues() {
        assertThrows(InputException.class, () -> Sampler.Settings.of(SamplerKind.EULER_A, 0));
        assertThrows(InputException.class, () -> Sampler.Settings.of(SamplerKind.EULER_A, 1001));
        assertThrows(InputException.class, () -> Sampler.Settings.of(SamplerKind.DDIM, 30, ScheduleType.KARRAS));
        assertThrows(InputException.class, () -> new Sampler.Settings(SamplerKind.EULER, 30, ScheduleType.NORMAL, 0.5, false));
        assertThrows(InputException.class, () -> new Sampler.Settings(SamplerKind.EULER, 30, ScheduleType.NORMAL, 0, true));
    }

    @Test
    void samplerNamesParseAsUsersWriteThem() {
        assertEquals(SamplerKind.EULER_A, SamplerKind.parse("Euler a"));
        assertEquals(SamplerKind.EULER_A, SamplerKind.parse("k_euler_a"));
        assertEquals(SamplerKind.EULER, SamplerKind.parse("euler"));
        assertEquals(SamplerKind.DPMPP_2M, SamplerKind.parse("DPM++ 2M Karras"));
        assertEquals(ScheduleType.KARRAS, ScheduleType.fromSamplerName("DPM++ 2M Karras"));
        assertEquals(SamplerKind.DPMPP_2M, SamplerKind.parse("dpmsolver++"));
        assertEquals(SamplerKind.DDIM, SamplerKind.parse("DDIM"));
        InputException e = assertThrows(InputException.class, () -> SamplerKind.parse("plms"));
        assertTrue(e.getMessage().contains("plms") && e.getMessage().contains("Euler a"), e.getMessage());
    }
}
