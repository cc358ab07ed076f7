package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.Arrays;

import org.junit.jupiter.api.Test;

import tenmin.testing.Numerics;

/**
 * Expected values were printed by PyTorch 1.13.1 (Debian python3-torch, CPU) with
 * {@code torch.manual_seed(seed); torch.randn(n)} (8 significant digits).
 */
class TorchGeneratorTest {
    /** PyTorch's vectorised log/sin/cos round differently from correctly rounded ones by a few ulp. */
    private static final double ABS_TOL = 2e-6;

    private static void assertDraws(String name, float[] expected, float[] actual) {
        Numerics.assertClose(name, new long[] {expected.length}, expected, actual, ABS_TOL, 0);
    }

    @Test
    void sixteenValuesFromSeedZero() {
        float[] expected = {-1.1258398f, -1.1523602f, -0.25057858f, -0.43387881f, 0.84871036f, 0.69200915f,
            -0.31601277f, -2.1152194f, 0.32227492f, -1.2633348f, 0.34998319f, 0.30813393f, 0.11984151f,
            1.2376579f, 1.1167772f, -0.24727815f};
        assertDraws("seed 0 randn(16)", expected, new TorchGenerator(0).next(16));
    }

    @Test
    void fewerThanSixteenUseTheDoublePath() {
        assertDraws("seed 0 randn(3)", new float[] {1.5409961f, -0.2934289f, -2.1787894f}, new TorchGenerator(0).next(3));
        // negative seeds wrap to unsigned 64 bits in PyTorch
        assertDraws("seed -1 randn(2)", new float[] {1.21976304f, -0.39297947f}, new TorchGenerator(-1).next(2));
    }

    @Test
    void raggedTailRedrawsTheLastSixteen() {
        float[] expected = {1.9269153f, 1.4872841f, 0.9007172f, -2.105521f, -0.75813115f, 1.0783176f, 0.80080056f,
            1.6806206f, 0.35585991f, -0.68662298f, -0.49335635f, 0.24148779f, -0.23162432f, 0.041759491f,
            -0.25157529f, 0.85985851f, -0.30972677f, -0.3957105f, 0.80340934f, -0.62159538f};
        assertDraws("seed 42 randn(20)", expected, new TorchGenerator(42).next(20));
    }

    @Test
    void consecutiveCallsContinueTheStreamAndTheCachedNormal() {
        TorchGenerator g = new TorchGenerator(7);
        assertDraws("seed 7 randn(5)", new float[] {-0.14679509f, 0.78614128f, 0.94682163f, -1.114344f, 1.6907902f},
                g.next(5));
        assertDraws("then randn(16)", new float[] {0.60947347f, -0.58113378f, 0.049043868f, -0.32047692f,
            -1.5826646f, -0.32456663f, 1.9263681f, -0.33001173f, -0.5519405f, 0.35274902f, -1.0842019f,
            -0.88749009f, -0.20934042f, -0.21534152f, -1.8157287f, -0.34524196f}, g.next(16));
        // the 6th double-path value was cached by the first call
        assertDraws("then randn(3)", new float[] {-0.8948279f, 1.3954508f, 1.3470227f}, g.next(3));
    }

    @Test
    void latentShapedDrawMatchesTorch() {
        // torch.manual_seed(123456789); torch.randn(1, 4, 16, 16)
        float[] x = new TorchGenerator(123456789).next(4 * 16 * 16);
        assertDraws("first 8", new float[] {0.2642554f, -0.41489896f, -0.60751379f, 0.73192871f, -0.15688676f,
            -0.860241f, -0.84619743f, -0.30944085f}, Arrays.copyOf(x, 8));
        assertDraws("last 8", new float[] {-0.24161513f, 0.47036034f, 0.020051589f, -0.26449594f, 1.0054508f,
            0.72326136f, 0.7923767f, 0.45233276f}, Arrays.copyOfRange(x, x.length - 8, x.length));
        double sum = 0;
        double sumSq = 0;
        for (float v : x) {
            sum += v;
            sumSq += (double) v * v;
        }
        assertEquals(-48.11858565424336, sum, 1e-4);
        assertEquals(960.4273585644663, sumSq, 1e-3);
    }

    @Test
    void onlyTheLowThirtyTwoBitsOfTheSeedCount() {
        assertArrayEquals(new TorchGenerator(5).next(16), new TorchGenerator((1L << 32) + 5).next(16));
        assertArrayEquals(new TorchGenerator(5).next(16), new TorchGenerator(Long.MIN_VALUE + 5).next(16));
    }

    @Test
    void sameSeedSameNoiseOtherSeedOtherNoise() {
        float[] a = new TorchGenerator(1234).next(4 * 128 * 128);
        float[] b = new TorchGenerator(1234).next(4 * 128 * 128);
        float[] c = new TorchGenerator(1235).next(4 * 128 * 128);
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c));
    }
}
