package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.ObjectMapper;

import tenmin.testing.Fixtures;

/** The writer reproduces files written by the reference safetensors writer byte for byte. */
class SafetensorsRoundTripTest {

    /** Every fixture file written by the reference (Python safetensors). */
    private static List<Path> referenceFiles() throws IOException {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> s = Files.walk(Fixtures.root())) {
            s.filter(p -> p.toString().endsWith(".safetensors")).sorted().forEach(files::add);
        }
        return files;
    }

    @TestFactory
    Stream<DynamicTest> rewritesReferenceFilesIdentically() throws IOException {
        return referenceFiles().stream().map(p -> DynamicTest.dynamicTest(
                "rewrite [" + Fixtures.root().relativize(p) + "]", () -> checkRewrite(p)));
    }

    /** {@link SafetensorsWriter#tensorOrder()} is the order the data callbacks run in, the reference's file order. */
    @Test
    void tensorOrderIsTheOrderDataIsWritten() throws IOException {
        Path p = referenceFiles().stream().filter(f -> f.toString().contains("lora")).findFirst()
                .orElse(referenceFiles().get(0));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            SafetensorsWriter w = new SafetensorsWriter();
            List<String> called = new ArrayList<>();
            List<String> names = new ArrayList<>(f.names());
            java.util.Collections.reverse(names);
            for (String n : names) {
                TensorInfo t = f.info(n);
                w.add(n, t.dtype(), t.shape(), out -> {
                    called.add(n);
                    SafetensorsWriter.writeSegment(out, f.segment(n));
                });
            }
            List<String> fileOrder = new ArrayList<>(f.names());
            fileOrder.sort(java.util.Comparator.comparingLong(n -> f.info(n).begin()));
            assertEquals(fileOrder, w.tensorOrder());
            w.writeTo(OutputStream.nullOutputStream());
            assertEquals(w.tensorOrder(), called);
            assertTrue(called.size() > 3, p + " has several tensors");
        }
    }

    private static void checkRewrite(Path p) throws IOException {
        byte[] original = Files.readAllBytes(p);
        byte[] rewritten;
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            SafetensorsWriter w = new SafetensorsWriter().metadata(f.metadata());
            // add in reverse name order: the writer must sort by itself
            List<String> names = new ArrayList<>(f.names());
            java.util.Collections.reverse(names);
            for (String n : names) {
                w.copy(f, n);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            w.writeTo(out);
            rewritten = out.toByteArray();
            if (f.metadata().size() <= 1) {
                assertArrayEquals(original, rewritten, "byte-identical rewrite of " + p.getFileName());
            } else {
                // the reference writes metadata keys in random order: compare parsed headers and the data section
                long n = f.headerBytes();
                ObjectMapper json = new ObjectMapper();
                assertEquals(json.readTree(new String(original, 8, (int) n, "UTF-8")),
                        json.readTree(new String(rewritten, 8, (int) n, "UTF-8")));
                assertArrayEquals(java.util.Arrays.copyOfRange(original, (int) (8 + n), original.length),
                        java.util.Arrays.copyOfRange(rewritten, (int) (8 + n), rewritten.length));
                assertEquals(original.length, rewritten.length);
            }
        }
    }

    @Test
    void writesFloatsInEachDtypeAndReadsThemBack(@TempDir Path dir) throws IOException {
        float[] v = {0f, -1.5f, 3.140625f, 65504f, 1e-3f, Float.NEGATIVE_INFINITY};
        Path p = dir.resolve("t.safetensors");
        new SafetensorsWriter()
                .metadata("b", "2").metadata("a", "1")
                .addFloats("x32", StDType.F32, new long[] {2, 3}, v)
                .addFloats("x16", StDType.F16, new long[] {6}, v)
                .addFloats("xbf", StDType.BF16, new long[] {3, 2}, v)
                .addFloats("alpha", StDType.F16, new long[] {}, new float[] {4f})
                .addLongs("ids", new long[] {2}, new long[] {49406, -7})
                .write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("b", "a"), List.copyOf(f.metadata().keySet()), "metadata keeps insertion order");
            assertArrayEquals(v, f.readFloats("x32"));
            for (int i = 0; i < v.length; i++) {
                assertEquals(Half.roundTo(v[i], StDType.F16), f.readFloats("x16")[i]);
                assertEquals(Half.roundTo(v[i], StDType.BF16), f.readFloats("xbf")[i]);
            }
            assertEquals(4.0, f.readScalar("alpha"));
            assertArrayEquals(new long[] {49406, -7}, f.readLongs("ids"));
            assertEquals(0, f.dataStart() % 8, "header padded to a multiple of 8");
            // I64 sorts before F32 before BF16 before F16 (dtype descending), then names
            List<String> order = f.tensorsInFileOrder().stream().map(TensorInfo::name).toList();
            assertEquals(List.of("ids", "x32", "xbf", "alpha", "x16"), order);
        }
    }

    @Test
    void escapesMetadataLikeSerdeJson() {
        String h = new SafetensorsWriter().metadata("k", "q\"b\\n\nt\tc\u0001é/").headerJson();
        assertEquals("{\"__metadata__\":{\"k\":\"q\\\"b\\\\n\\nt\\tc\\u0001é/\"}}", h);
    }

    @Test
    void omitsEmptyMetadataAndKeepsEmptyTensors(@TempDir Path dir) throws IOException {
        Path p = dir.resolve("e.safetensors");
        new SafetensorsWriter().addFloats("z", StDType.F32, new long[] {0, 3}, new float[0]).write(p);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertTrue(f.metadata().isEmpty());
            assertEquals(0, f.info("z").numel());
        }
        String text = new String(Files.readAllBytes(p), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(text.contains("{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}"), text);
    }
}
