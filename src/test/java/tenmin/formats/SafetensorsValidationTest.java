package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.core.InputException;

/** Malformed and hostile files are rejected with one clear line naming the file, never anything else. */
class SafetensorsValidationTest {
    @TempDir
    Path dir;

    private Path file(byte[] bytes) throws IOException {
        Path p = dir.resolve("bad.safetensors");
        Files.write(p, bytes);
        return p;
    }

    private static byte[] build(String header, int dataBytes) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        return b.array();
    }

    private void rejects(byte[] bytes, String expectedPart) throws IOException {
        Path p = file(bytes);
        byte[] before = Files.readAllBytes(p);
        InputException e = assertThrows(InputException.class, () -> SafetensorsFile.open(p).close());
        assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(expectedPart), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(p), "input untouched");
    }

    @Test
    void rejectsEmptyAndTinyFiles() throws IOException {
        rejects(new byte[0], "shorter than the 8-byte header length");
        rejects(new byte[5], "shorter than the 8-byte header length");
    }

    @Test
    void rejectsHeaderLengthPastEnd() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
        rejects(b.array(), "runs past the end of the file");
        ByteBuffer neg = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        rejects(neg.array(), "runs past the end of the file");
    }

    @Test
    void rejectsTruncatedFile() throws IOException {
        byte[] ok = build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
        rejects(java.util.Arrays.copyOf(ok, ok.length - 3), "run past the end of the data section");
    }

    @Test
    void rejectsNonJsonAndNonUtf8Headers() throws IOException {
        rejects(build("not json at all!", 0), "not valid JSON");
        rejects(build("[1,2,3]", 0), "not a JSON object");
        byte[] b = build("{\"a\":1}", 0);
        b[10] = (byte) 0xC3; // start of a 2-byte sequence followed by ASCII
        rejects(b, "not valid UTF-8");
    }

    @Test
    void rejectsContentAfterTheHeaderObjectButAcceptsSpacePadding() throws IOException {
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} {}", 4), "trailing content");
        rejects(build("{}x", 0), "not valid JSON");
        rejects(build("[".repeat(100_000), 0), "nesting depth"); // no stack overflow: the parser's depth limit
        Path p = file(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}      ", 4));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertTrue(f.names().contains("a"));
        }
    }

    @Test
    void namesTheOffendingValueAsJson() throws IOException {
        rejects(build("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype 7");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4),
                "invalid shape entry 1.0");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4),
                "invalid shape entry \"1\"");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", 4),
                "data_offsets must be two integers, found [0,99999999999999999999]");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":null,\"data_offsets\":[0,4]}}", 4), "shape is not an array");
    }

    @Test
    void rejectsUnknownDtype() throws IOException {
        rejects(build("{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "unknown dtype");
    }

    @Test
    void rejectsShapeSizeMismatch() throws IOException {
        rejects(build("{\"a\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "data_offsets span 8");
        rejects(build("{\"a\":{\"dtype\":\"F16\",\"shape\":[-3],\"data_offsets\":[0,8]}}", 8), "invalid shape entry");
        rejects(build("{\"a\":{\"dtype\":\"F16\",\"shape\":[4294967296,4294967296,8],\"data_offsets\":[0,8]}}", 8),
                "overflows");
    }

    @Test
    void rejectsOverlapsGapsAndTrailingBytes() throws IOException {
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "overlaps");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12), "gap");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12), "trailing bytes");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4), "invalid data_offsets");
    }

    @Test
    void rejectsDuplicateNamesAndBadMetadata() throws IOException {
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "Duplicate field");
        rejects(build("{\"__metadata__\":{\"x\":1}}", 0), "is not a string");
        rejects(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0), "lacks data_offsets");
    }

    @Test
    void namesAMissingTensorOrFile() throws IOException {
        Path p = file(build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            InputException e = assertThrows(InputException.class, () -> f.info("b"));
            assertTrue(e.getMessage().contains("\"b\""));
        }
        assertThrows(InputException.class, () -> SafetensorsFile.open(dir.resolve("missing.safetensors")));
    }
}
