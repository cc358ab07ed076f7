package tenmin.train.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.testing.Fixtures;

class BucketsTest {
    private static final List<Buckets.Reso> SDXL = Buckets.makeResolutions(1024, 1024, 256, 2048, 32);

    @Test
    void makesTheReference81Buckets() throws Exception {
        Path p = Fixtures.require("schedule.json");
        JsonNode values = new ObjectMapper().readTree(p.toFile()).get("buckets").get("values");
        List<Buckets.Reso> expected = new ArrayList<>();
        for (JsonNode v : values) {
            expected.add(new Buckets.Reso(v.get(0).asInt(), v.get(1).asInt()));
        }
        assertEquals(81, expected.size());
        assertEquals(expected, SDXL);
    }

    /** trainer-spec §3.4's worked example: 1920x1080. */
    @Test
    void selectsNearestAspectAndRecordsTheLetterboxCrop() {
        Buckets.Assignment a = Buckets.select(SDXL, 1920, 1080);
        assertEquals(new Buckets.Reso(1344, 768), a.bucket());
        assertEquals(1365, a.resizedWidth());
        assertEquals(768, a.resizedHeight());
        assertArrayEquals(new double[] {0, 6, 1344, 762}, Buckets.cropLtrb(a.bucket(), 1920, 1080), 1e-9);
        assertEquals(1344.0 / 768 - 1920.0 / 1080, a.arError(), 1e-12);
        // flipped draw: left = bucketW - crop_right
        SizeConditioning flipped = SizeConditioning.of(a.bucket(), 1920, 1080, true);
        assertArrayEquals(new int[] {1080, 1920, 6, 0, 768, 1344}, flipped.values());
        // a portrait: 800x1000 (AR 0.8) -> (896,1152) (AR 0.778); wider than the bucket, so the height
        // is matched: scale 1152/1000, resized (int(921.6 + 0.5), 1152) = 922x1152, then the width is cropped
        Buckets.Assignment p = Buckets.select(SDXL, 800, 1000);
        assertEquals(new Buckets.Reso(896, 1152), p.bucket());
        assertEquals(922, p.resizedWidth());
        assertEquals(1152, p.resizedHeight());
        double[] ltrb = Buckets.cropLtrb(p.bucket(), 800, 1000);
        // bucket AR 0.7778 < image AR 0.8 -> rw = 896, rh = 896/0.8 = 1120, t = floor(32/2) = 16
        assertArrayEquals(new double[] {0, 16, 896, 1136}, ltrb, 1e-9);
        assertArrayEquals(new int[] {1000, 800, 16, 0, 1152, 896}, SizeConditioning.of(p.bucket(), 800, 1000, false).values());
        // exact bucket sizes stay, and no crop offsets
        assertEquals(new Buckets.Reso(832, 1216), Buckets.select(SDXL, 832, 1216).bucket());
        // 2:1 -> (1440,704) (AR 2.045, error 0.045 beats (1408,736) with 0.087); bucket wider than the image:
        // rw = 704*2 = 1408, l = floor(32/2) = 16; flipped: left = 1440 - 1424 = 16
        Buckets.Assignment wide = Buckets.select(SDXL, 2000, 1000);
        assertEquals(new Buckets.Reso(1440, 704), wide.bucket());
        assertArrayEquals(new double[] {16, 0, 1424, 704}, Buckets.cropLtrb(wide.bucket(), 2000, 1000), 1e-9);
        assertArrayEquals(new int[] {1000, 2000, 0, 16, 704, 1440}, SizeConditioning.of(wide.bucket(), 2000, 1000, true).values());
    }

    @Test
    void noUpscaleKeepsSmallImagesAndShrinksLargeOnes() {
        Buckets.Assignment small = Buckets.selectNoUpscale(500, 300, 1024L * 1024, 64);
        assertEquals(new Buckets.Reso(448, 256), small.bucket());
        assertEquals(500, small.resizedWidth());
        Buckets.Assignment big = Buckets.selectNoUpscale(4000, 2000, 1024L * 1024, 64);
        // area-preserving size 1448.2x724.1; kohya's round_to_steps = int(x+0.5) rounded DOWN to the step:
        // width 1448 -> 1408 (height 704, AR 2.0); height 724 -> 704 (width 1408, AR 2.0); tie -> height branch
        assertEquals(1408, big.resizedWidth());
        assertEquals(704, big.resizedHeight());
        assertEquals(new Buckets.Reso(1408, 704), big.bucket());
    }
}
