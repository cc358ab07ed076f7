package tenmin.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

import tenmin.formats.RgbImage;

class VaeImagesTest {
    @Test
    void mapsMinusOneToOneOntoBytesRoundingHalfToEven() {
        // (N=2, 3, H=1, W=3); image 1 holds the interesting values
        float[] d = new float[2 * 3 * 3];
        float[] r = {-1f, 0f, 1f};          // 0, 127.5 -> 128 (half to even), 255
        float[] g = {-2f, 2f, Float.NaN};   // clamped: 0, 255; NaN -> 0
        float[] b = {-0.5f, 0.5f, 0.0039216f}; // 63.75 -> 64, 191.25 -> 191, 128.0 -> 128
        for (int i = 0; i < 3; i++) {
            d[9 + i] = r[i];
            d[12 + i] = g[i];
            d[15 + i] = b[i];
        }
        RgbImage img = VaeImages.toRgb(d, 1, 3, 1);
        assertEquals(0x000040, img.rgb(0, 0));
        assertEquals(0x80FFBF, img.rgb(1, 0));
        assertEquals(0xFF0080, img.rgb(2, 0));
        assertEquals(0x808080, VaeImages.toRgb(d, 0, 3, 1).rgb(0, 0)); // zeros are mid-grey
        assertThrows(IllegalArgumentException.class, () -> VaeImages.toRgb(d, 2, 3, 1));
    }
}
