package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;

/** NumPy .npz archives: files written by NumPy itself (test resources), and what we write. */
class NpzFileTest {
    @TempDir
    Path dir;

    private static Path resource(String name) throws URISyntaxException {
        return Path.of(NpzFileTest.class.getResource(name).toURI());
    }

    @Test
    void readsKohyaLatentCacheWrittenByNumpy() throws Exception {
        Map<String, NpzFile.Array> a = NpzFile.read(resource("kohya-latents.npz"));
        assertEquals(List.of("latents", "original_size", "crop_ltrb", "latents_flipped"), List.copyOf(a.keySet()));
        NpzFile.Array lat = a.get("latents");
        assertEquals(NpzFile.Kind.F32, lat.kind());
        assertArrayEquals(new long[] {4, 2, 3}, lat.shape());
        float[] v = lat.floats();
        for (int i = 0; i < v.length; i++) {
            assertEquals(i * 0.25f - 1.5f, v[i]);
        }
        // lat[:, :, ::-1]: each row of 3 reversed
        float[] flipped = a.get("latents_flipped").floats();
        assertEquals(v[2], flipped[0]);
        assertEquals(v[0], flipped[2]);
        assertEquals(NpzFile.Kind.I64, a.get("original_size").kind());
        assertArrayEquals(new double[] {1920, 1080}, a.get("original_size").doubles());
        assertEquals(NpzFile.Kind.F64, a.get("crop_ltrb").kind());
        assertArrayEquals(new double[] {0, 6.5, 1344, 762.25}, a.get("crop_ltrb").doubles());
    }

    @Test
    void readsCompressedArchivesAndOtherTypes() throws Exception {
        Map<String, NpzFile.Array> a = NpzFile.read(resource("compressed.npz"));
        assertArrayEquals(new long[] {1, 3}, a.get("small").shape());
        assertArrayEquals(new double[] {1, 2, 3}, a.get("small").doubles());
        assertArrayEquals(new float[] {0.5f, -2f}, a.get("half").floats());
        assertArrayEquals(new long[0], a.get("scalar").shape());
        assertArrayEquals(new double[] {3.25}, a.get("scalar").doubles());
    }

    @Test
    void writesWhatNumpyWritesEntryForEntry() throws Exception {
        // The same arrays as the NumPy file: every .npy entry must be byte-identical (headers, padding, data).
        Map<String, NpzFile.Array> numpy = NpzFile.read(resource("kohya-latents.npz"));
        Map<String, NpzFile.Array> ours = new LinkedHashMap<>();
        float[] lat = new float[24];
        for (int i = 0; i < lat.length; i++) {
            lat[i] = i * 0.25f - 1.5f;
        }
        ours.put("latents", NpzFile.Array.ofFloats(lat, 4, 2, 3));
        ours.put("original_size", NpzFile.Array.ofLongs(new long[] {1920, 1080}, 2));
        ours.put("crop_ltrb", NpzFile.Array.ofDoubles(new double[] {0, 6.5, 1344, 762.25}, 4));
        ours.put("latents_flipped", numpy.get("latents_flipped"));
        Path out = dir.resolve("x.npz");
        NpzFile.write(out, ours);
        try (java.util.zip.ZipFile theirs = new java.util.zip.ZipFile(resource("kohya-latents.npz").toFile());
             java.util.zip.ZipFile mine = new java.util.zip.ZipFile(out.toFile())) {
            for (String key : ours.keySet()) {
                byte[] expected = theirs.getInputStream(theirs.getEntry(key + ".npy")).readAllBytes();
                byte[] actual = mine.getInputStream(mine.getEntry(key + ".npy")).readAllBytes();
                assertArrayEquals(expected, actual, key + ".npy differs from NumPy's");
                assertEquals(java.util.zip.ZipEntry.STORED, mine.getEntry(key + ".npy").getMethod());
            }
        }
        assertEquals(List.of("x.npz"), listing(dir), "no temporary file left");
    }

    @Test
    void scalarAndLargeShapesHaveNumpysHeaders() {
        String h = header(NpzFile.npy(NpzFile.Array.ofFloats(new float[] {1}, new long[0])));
        assertTrue(h.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (), }"), h);
        assertEquals(0, (10 + h.length()) % 64);
        assertTrue(h.endsWith("\n"));
        String h2 = header(NpzFile.npy(NpzFile.Array.ofFloats(new float[4 * 128 * 96], 4, 128, 96)));
        assertTrue(h2.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 128, 96), }"), h2);
    }

    private static String header(byte[] npy) {
        int len = (npy[8] & 0xFF) | (npy[9] & 0xFF) << 8;
        return new String(npy, 10, len, StandardCharsets.ISO_8859_1);
    }

    @Test
    void rejectsNonArchivesNamingTheFile() throws IOException {
        Path bad = dir.resolve("bad.npz");
        Files.writeString(bad, "not a zip");
        InputException e = assertThrows(InputException.class, () -> NpzFile.read(bad));
        assertTrue(e.getMessage().startsWith(bad.toString()), e.getMessage());
    }

    private static List<String> listing(Path d) throws IOException {
        try (var s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
